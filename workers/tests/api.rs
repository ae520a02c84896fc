//! The REST API (`/api/v1`) through the whole system: keys (scopes, revocation, rate), problem+json
//! errors that name the field, `Idempotency-Key`s, messages sent to the sandbox, broadcasts made
//! and controlled, contacts upserted by number, the OpenAPI document and its page, and another
//! workspace reaching nothing.

mod common;

use std::time::Duration;

use balas_domain::PhoneNumber;
use common::{Browser, Harness, PDF, PNG, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Makes a key as `admin` with these scopes (and rate); returns its secret.
async fn key(h: &Harness, admin: &Browser, name: &str, scopes: &[&str], rate: Option<u32>) -> (i64, String) {
    let mut form: Vec<(String, String)> = vec![("name".into(), name.into())];
    for (i, scope) in scopes.iter().enumerate() {
        form.push((format!("scopes[{i}]"), (*scope).into()));
    }
    if let Some(rate) = rate {
        form.push(("rate_per_minute".into(), rate.to_string()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = h.call(admin, "create_api_key", &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["key"]["id"].as_i64().unwrap(), body["secret"].as_str().unwrap().to_owned())
}

struct Api<'a> {
    h: &'a Harness,
    http: reqwest::Client,
    secret: String,
}

impl Api<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (StatusCode, String, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.h.base()))
            .header("authorization", format!("Bearer {}", self.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = idem {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = response.text().await.unwrap();
        (status, kind, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, String, Value) {
        self.send(reqwest::Method::POST, path, Some(body), None).await
    }

    async fn get(&self, path: &str) -> (StatusCode, String, Value) {
        self.send(reqwest::Method::GET, path, None, None).await
    }
}

fn fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["issue"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn keys_scopes_and_errors_guard_every_endpoint() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "ERP", "+62 811 7600 001", 20).await;
    let (_, reader) = key(&h, &admin, "Reader", &["read"], None).await;
    let (sender_id, sender) = key(&h, &admin, "Sender", &["send_messages"], None).await;
    let http = reqwest::Client::new();
    let api = |secret: &str| Api { h: &h, http: http.clone(), secret: secret.to_owned() };

    // No key, a wrong key: 401 as problem+json that says what to send.
    let (status, kind, body) = api("").get("/api/v1/messages/1").await;
    assert_eq!((status, kind.as_str()), (StatusCode::UNAUTHORIZED, "application/problem+json"));
    assert_eq!(body["code"], json!("unauthenticated"));
    assert!(body["detail"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    let (status, _, _) = api("blk_not-a-key").get("/api/v1/messages/1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A key without the scope: 403, and nothing queued.
    let send = json!({ "channel_id": channel.id.0, "to": "+6281276000001", "text": "Order #1 shipped" });
    let (status, _, body) = api(&reader).post("/api/v1/messages", send.clone()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(h.bus.send_backlog(channel.id).await.unwrap(), 0);

    // Validation names the request's fields; a malformed body is a 400 that says why.
    let bad = json!({ "channel_id": 999_999, "to": "0812", "text": "" });
    let (status, kind, body) = api(&sender).post("/api/v1/messages", bad).await;
    assert_eq!((status, kind.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"));
    assert_eq!(
        fields(&body),
        [
            ("to".into(), "invalid_phone".into()),
            ("text".into(), "required".into()),
            ("channel_id".into(), "not_allowed".into())
        ]
    );
    assert!(body["detail"].as_str().unwrap().contains("to is not a phone number"), "{body}");
    let (status, _, body) = api(&sender).post("/api/v1/messages", json!({ "to": 5 })).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_request")));
    let (status, _, body) = api(&sender)
        .post("/api/v1/messages", json!({ "channel_id": 1, "to": "+62812", "text": "x", "extra": 1 }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown fields are refused: {body}");
    let (status, _, body) = api(&sender).get("/api/v1/nothing-here").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    // Revoked: refused at once.
    let (status, _) = h.call(&admin, "revoke_api_key", &[("id", &sender_id.to_string())]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api(&sender).post("/api/v1/messages", send).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, keys) = h.call(&admin, "api_keys", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(keys.to_string().contains("\"revoked_at\":"), "{keys}");
    assert!(!keys.to_string().contains(&sender), "the secret is never shown again");

    // Keys: admins only, checked field by field.
    let agent = h.agent(&admin, "budi@example.com").await;
    let (status, _) = h.call(&agent, "create_api_key", &[("name", "Mine"), ("scopes[0]", "read")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = h.call(&admin, "create_api_key", &[("name", ""), ("scopes[0]", "everything")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // The rate: over it, 429 with Retry-After.
    let (_, limited) = key(&h, &admin, "Tight", &["read"], Some(3)).await;
    for _ in 0..3 {
        let (status, _, _) = api(&limited).get("/api/v1/messages/1").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let response = http
        .get(format!("{}/api/v1/messages/1", h.base()))
        .header("authorization", format!("Bearer {limited}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // The document and its page need no key.
    let doc: Value = http.get(format!("{}/api/v1/openapi.json", h.base())).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/api/v1/broadcasts/{id}/pause"]["post"].is_object(), "{doc}");
    let page = http.get(format!("{}/api/v1/docs", h.base())).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/api/v1/messages") && page.contains("CreateBroadcast"));
}

#[tokio::test]
async fn messages_broadcasts_and_contacts_through_the_api() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "ERP", "+62 811 7700 001", 20).await;
    let worker = h.worker();
    let (_, secret) =
        key(&h, &admin, "ERP", &["send_messages", "manage_broadcasts", "manage_contacts", "read"], None).await;
    let api = Api { h: &h, http: reqwest::Client::new(), secret };
    let customer = PhoneNumber::parse("+6281277000001").unwrap();

    // A message, sent once however often the ERP retries it.
    let send = json!({ "channel_id": channel.id.0, "to": customer.as_str(), "text": "Pesanan #7 dikirim" });
    let (status, _, first) =
        api.send(reqwest::Method::POST, "/api/v1/messages", Some(send.clone()), Some("order-7")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    // The inbox shows it as the API's, not an agent's nor Balas's own.
    let stored = h
        .store
        .message(channel.workspace_id, balas_domain::MessageId(first["id"].as_i64().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sender, balas_domain::SenderKind::Api);
    let (status, _, again) =
        api.send(reqwest::Method::POST, "/api/v1/messages", Some(send.clone()), Some("order-7")).await;
    assert_eq!((status, &again["id"]), (StatusCode::ACCEPTED, &first["id"]));
    let other = json!({ "channel_id": channel.id.0, "to": customer.as_str(), "text": "something else" });
    let (status, _, body) = api.send(reqwest::Method::POST, "/api/v1/messages", Some(other), Some("order-7")).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")));
    let id = first["id"].as_i64().unwrap();
    let delivered = eventually(Duration::from_secs(30), "the message to be delivered", || async {
        let (_, _, message) = api.get(&format!("/api/v1/messages/{id}")).await;
        (message["status"] == json!("delivered") || message["status"] == json!("read")).then_some(message)
    })
    .await;
    assert_eq!(delivered["text"], json!("Pesanan #7 dikirim"));
    assert_eq!(h.bus.sandbox_ledger(&customer).await.unwrap().len(), 1, "one message on the phone");

    // Contacts: created, then updated by number (absent fields stay).
    let (status, _, created) = api
        .post("/api/v1/contacts", json!({ "phone": "+62 812 7700 0002", "name": "Sari", "email": "sari@example.com" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _, updated) =
        api.post("/api/v1/contacts", json!({ "phone": "+6281277000002", "name": "Sari Dewi" })).await;
    assert_eq!(
        (status, &updated["id"], &updated["email"]),
        (StatusCode::OK, &created["id"], &json!("sari@example.com"))
    );
    let (status, _, found) = api.get("/api/v1/contacts/+6281277000002").await;
    assert_eq!((status, &found["name"]), (StatusCode::OK, &json!("Sari Dewi")));
    let (status, _, body) = api.post("/api/v1/contacts", json!({ "phone": "12", "attributes": { "nope": "x" } })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(fields(&body)[0], ("phone".into(), "invalid_phone".into()));
    let (status, _, _) = api.get("/api/v1/contacts/+6281299999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A broadcast: refused with the reason, then created, paused, resumed, finished.
    let bad = json!({ "name": "Promo", "channel_id": channel.id.0, "audience": { "kind": "all" }, "text": "Hi {{nickname}}" });
    let (status, _, body) = api.post("/api/v1/broadcasts", bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), [("text".into(), "unknown_variable".into())]);
    let past = json!({ "name": "Promo", "channel_id": channel.id.0, "audience": { "kind": "all" }, "text": "Hi", "send_at": 1 });
    assert_eq!(fields(&api.post("/api/v1/broadcasts", past).await.2), [("send_at".into(), "in_past".into())]);
    let list: Vec<String> = (1..=6).map(|i| format!("+628127710{i:04}")).collect();
    let good = json!({ "name": "Promo", "channel_id": channel.id.0, "audience": { "kind": "list", "phones": list },
        "text": "Hi {{first_name|Kak}}", "missing": { "rule": "skip" } });
    let (status, _, broadcast) =
        api.send(reqwest::Method::POST, "/api/v1/broadcasts", Some(good.clone()), Some("promo-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{broadcast}");
    let (status, _, replay) = api.send(reqwest::Method::POST, "/api/v1/broadcasts", Some(good), Some("promo-1")).await;
    assert_eq!(
        (status, &replay["id"]),
        (StatusCode::CREATED, &broadcast["id"]),
        "the same broadcast, not a second one"
    );
    let id = broadcast["id"].as_i64().unwrap();
    let (status, _, paused) = api.post(&format!("/api/v1/broadcasts/{id}/pause"), json!({})).await;
    assert_eq!((status, &paused["status"]), (StatusCode::OK, &json!("paused")));
    let (status, _, body) = api.post(&format!("/api/v1/broadcasts/{id}/pause"), json!({})).await;
    assert_eq!(
        (status, fields(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec![("status".into(), "wrong_state".into())])
    );
    let (status, _, resumed) = api.post(&format!("/api/v1/broadcasts/{id}/resume"), json!({})).await;
    assert_eq!((status, &resumed["status"]), (StatusCode::OK, &json!("running")));
    eventually(Duration::from_secs(30), "the broadcast to finish", || async {
        let (_, _, b) = api.get(&format!("/api/v1/broadcasts/{id}")).await;
        (b["status"] == json!("finished")).then_some(())
    })
    .await;
    let (status, _, rows) = api.get(&format!("/api/v1/broadcasts/{id}/recipients?state=delivered")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, all) = api.get(&format!("/api/v1/broadcasts/{id}/recipients")).await;
    assert_eq!(all.as_array().map(Vec::len), Some(6), "{all}");
    assert!(rows.as_array().unwrap().iter().all(|r| r["state"] == json!("delivered")));
    let (status, _, body) = api.get(&format!("/api/v1/broadcasts/{id}/recipients?state=lost")).await;
    assert_eq!(
        (status, fields(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec![("state".into(), "not_allowed".into())])
    );
    let (status, _, _) = api.post(&format!("/api/v1/broadcasts/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a finished broadcast cannot be cancelled");

    // Another workspace's key sees none of it.
    let stranger = h.other_workspace().await;
    let (_, theirs) = key(&h, &stranger, "Theirs", &["read", "send_messages", "manage_broadcasts"], None).await;
    let them = Api { h: &h, http: reqwest::Client::new(), secret: theirs };
    assert_eq!(them.get(&format!("/api/v1/broadcasts/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(them.get(&format!("/api/v1/messages/{}", first["id"])).await.0, StatusCode::NOT_FOUND);
    assert_eq!(them.get("/api/v1/contacts/+6281277000002").await.0, StatusCode::NOT_FOUND);
    assert_eq!(them.post(&format!("/api/v1/broadcasts/{id}/cancel"), json!({})).await.0, StatusCode::NOT_FOUND);
    let (status, _, body) = them.post("/api/v1/messages", send).await;
    assert_eq!(
        (status, fields(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec![("channel_id".into(), "not_allowed".into())])
    );
    worker.stop().await;
}

/// A file server in the test, like a shop's: real HTTP on a local port.
async fn file_server() -> String {
    use axum::http::header::CONTENT_TYPE;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/files/receipt.png", axum::routing::get(|| async { ([(CONTENT_TYPE, "image/png")], PNG) }))
        .route("/files/inv", axum::routing::get(|| async { ([(CONTENT_TYPE, "application/pdf")], PDF) }))
        .route("/files/page", axum::routing::get(|| async { ([(CONTENT_TYPE, "text/html")], "<html></html>") }))
        .route("/files/fake.png", axum::routing::get(|| async { ([(CONTENT_TYPE, "image/png")], "<html></html>") }))
        .route("/files/voice.ogg", axum::routing::get(|| async { ([(CONTENT_TYPE, "audio/ogg")], &b"OggS\0\x02"[..]) }))
        .route(
            "/files/huge.jpg",
            axum::routing::get(|| async { ([(CONTENT_TYPE, "image/jpeg")], vec![0xFFu8; 6 * 1024 * 1024]) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn media_by_url_through_the_api() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Shop", "+62 811 7800 001", 20).await;
    let worker = h.worker();
    let (_, secret) = key(&h, &admin, "Shop", &["send_messages", "read"], None).await;
    let api = Api { h: &h, http: reqwest::Client::new(), secret };
    let files = file_server().await;
    let customer = PhoneNumber::parse("+6281278000001").unwrap();
    let workspace_dir = h.settings.media_dir.join(channel.workspace_id.0.to_string());
    let stored = || std::fs::read_dir(&workspace_dir).map(|d| d.filter_map(Result::ok).count()).unwrap_or(0);
    let send = |url: &str, text: &str| json!({ "channel_id": channel.id.0, "to": customer.as_str(), "text": text, "media_url": format!("{files}{url}") });

    // A photo with a caption: fetched, stored, sent; the customer's phone gets the same bytes.
    let (status, _, photo) = api.post("/api/v1/messages", send("/files/receipt.png", "Your receipt")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{photo}");
    assert_eq!(
        (&photo["media"]["kind"], &photo["media"]["mime"], &photo["media"]["size"], &photo["text"]),
        (&json!("image"), &json!("image/png"), &json!(PNG.len()), &json!("Your receipt"))
    );
    // A document without a caption, named by the caller.
    let mut invoice = send("/files/inv", "");
    invoice["file_name"] = json!("INV-2026-11.pdf");
    let (status, _, document) = api.post("/api/v1/messages", invoice).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{document}");
    assert_eq!(document["media"]["file_name"], json!("INV-2026-11.pdf"));
    let phone = eventually(Duration::from_secs(30), "both files on the customer's phone", || async {
        let got = h.bus.sandbox_messages(&customer).await.unwrap();
        (got.len() == 2).then_some(got)
    })
    .await;
    let on_phone = |kind| phone.iter().find_map(|m| m.media.clone().filter(|f| f.kind == kind)).unwrap();
    let sandbox = h.settings.media_dir.join("sandbox");
    assert_eq!(std::fs::read(sandbox.join(on_phone(balas_domain::MediaKind::Image).name.as_str())).unwrap(), PNG);
    let pdf = on_phone(balas_domain::MediaKind::Document);
    assert_eq!(pdf.file_name.as_deref(), Some("INV-2026-11.pdf"));
    assert_eq!(std::fs::read(sandbox.join(pdf.name.as_str())).unwrap(), PDF);
    let (_, _, fetched) = api.get(&format!("/api/v1/messages/{}", photo["id"])).await;
    assert_eq!(fetched["media"]["kind"], json!("image"));

    // Files that cannot be sent are refused with the field and the reason, and nothing is kept.
    let before = stored();
    let refused = [
        (send("/files/missing", "x"), "media_url", "download_failed"),
        (send("/files/page", "x"), "media_url", "file_type"),
        (send("/files/fake.png", "x"), "media_url", "file_type"),
        (send("/files/huge.jpg", "x"), "media_url", "file_too_large"),
        (send("/files/voice.ogg", "audio has no caption"), "text", "not_allowed"),
        (
            json!({ "channel_id": channel.id.0, "to": customer.as_str(), "media_url": "ftp://x/y" }),
            "media_url",
            "invalid_url",
        ),
        (
            json!({ "channel_id": channel.id.0, "to": customer.as_str(), "media_url": "http://127.0.0.1:1/a.png" }),
            "media_url",
            "download_failed",
        ),
        (
            json!({ "channel_id": channel.id.0, "to": customer.as_str(), "text": "x", "file_name": "a.pdf" }),
            "file_name",
            "not_allowed",
        ),
        (
            json!({ "channel_id": channel.id.0, "to": customer.as_str(), "media_url": format!("{files}/files/inv"), "file_name": "../x" }),
            "file_name",
            "not_allowed",
        ),
    ];
    for (body, field, issue) in refused {
        let (status, kind, problem) = api.post("/api/v1/messages", body.clone()).await;
        assert_eq!((status, kind.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"), "{body}");
        assert_eq!(fields(&problem), [(field.to_owned(), issue.to_owned())], "{body}: {problem}");
    }
    let (_, _, problem) = api.post("/api/v1/messages", send("/files/missing", "x")).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("could not be downloaded (the server answered 404)"),
        "{problem}"
    );
    assert_eq!(stored(), before, "no refused file is kept");
    assert_eq!(h.bus.sandbox_messages(&customer).await.unwrap().len(), 2, "nothing more was sent");
    worker.stop().await;
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_installation_allows_them() {
    let h = Harness::start(|s| s.allow_private_urls = false).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Shop", "+62 811 7900 001", 20).await;
    let (_, secret) = key(&h, &admin, "ERP", &["send_messages"], None).await;
    let api = Api { h: &h, http: reqwest::Client::new(), secret };
    // A service on the server's own machine, which no workspace may make Balas call.
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = internal.local_addr().unwrap().port();
    let issue_kinds = |body: &Value| -> Vec<(String, String)> {
        body["errors"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|e| (e["field"].as_str().unwrap().to_owned(), e["issue"]["kind"].as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let private = [("url".to_owned(), "private_address".to_owned())];

    // A file to send, by IP, by `localhost`, or by the cloud metadata service's address.
    for url in [
        format!("http://127.0.0.1:{port}/a.png"),
        format!("http://localhost:{port}/a.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/a.png"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let body = json!({ "channel_id": channel.id.0, "to": "+6281279000001", "text": "x", "media_url": url });
        let (status, _, problem) = api.post("/api/v1/messages", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert_eq!(fields(&problem), [("media_url".to_owned(), "private_address".to_owned())], "{url}");
        assert!(problem["detail"].as_str().unwrap().contains("BALAS_ALLOW_PRIVATE_URLS"), "{problem}");
    }
    assert_eq!(h.bus.send_backlog(channel.id).await.unwrap(), 0, "nothing was queued");

    // A webhook and an AI provider on this machine: refused when saved, nothing saved.
    let hook = format!("http://127.0.0.1:{port}/hook");
    let (status, body) = h.call(&admin, "create_webhook", &[("url", &hook), ("events[0]", "message.received")]).await;
    assert_eq!((status, issue_kinds(&body)), (StatusCode::UNPROCESSABLE_ENTITY, private.to_vec()), "{body}");
    let (_, listed) = h.call(&admin, "webhooks", &[]).await;
    assert_eq!(listed, json!([]), "no webhook was saved");
    let provider = format!("http://localhost:{port}/v1");
    let form = [("base_url", provider.as_str()), ("api_key", "sk-x"), ("model", "m")];
    let (status, body) = h.call(&admin, "set_ai_settings", &form).await;
    assert_eq!((status, issue_kinds(&body)), (StatusCode::UNPROCESSABLE_ENTITY, private.to_vec()), "{body}");
    assert!(h.store.ai_settings(channel.workspace_id).await.unwrap().is_none(), "no provider was saved");

    // Nothing ever connected to the internal service.
    use futures::FutureExt;
    assert!(internal.accept().now_or_never().is_none(), "Balas connected to a private address");
}
