//! Files in messages against the whole pipeline (server, worker, sandbox network, real Redis and
//! SQLite, the media folder on disk): a customer's photo reaches the inbox and is served to the
//! workspace's agents only; an agent's document reaches the customer's phone; files WhatsApp
//! would refuse are refused with the reason, and nothing of them is kept.

mod common;

use std::time::Duration;

use balas_domain::{AppError, Field, Issue, LiveEvent, Media, MediaKind, Message, PhoneNumber, SandboxMessage};
use common::{Browser, Harness, PDF, PNG, eventually, next_message, wait_connected};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, X_CONTENT_TYPE_OPTIONS};

/// Uploads `bytes` to `path` as `mime`; returns the status and the JSON answer.
async fn upload(
    h: &Harness,
    path: &str,
    who: Option<&Browser>,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut request = h.http.post(format!("{}{path}", h.base())).query(&[("name", name)]).header(CONTENT_TYPE, mime);
    if let Some(browser) = who {
        request = request.header(COOKIE, &browser.cookie);
    }
    let response = request.body(bytes).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

fn file_issue(body: &serde_json::Value) -> Issue {
    let error: AppError = serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{e}: {body}"));
    error.field_errors(Field::File).next().unwrap_or_else(|| panic!("no file error in {body}")).issue
}

/// The files in a media folder (none when it does not exist yet).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn files_travel_both_ways_and_are_served_to_their_workspace_only() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 201", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    let workspace_dir = h.settings.media_dir.join(channel.workspace_id.0.to_string());

    // A customer sends a photo with a caption from their phone.
    let customer = PhoneNumber::parse("+6281234567201").unwrap();
    let (status, body) = upload(&h, "/sandbox/api/media", None, "receipt.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sent: Media = serde_json::from_value(body).unwrap();
    let message = serde_json::json!({
        "from": customer.as_str(), "to": channel.phone.as_str(), "text": "transfer done",
        "media": {"name": sent.name.as_str(), "file_name": "receipt.png"},
    });
    let response = h.http.post(format!("{}/sandbox/api/messages", h.base())).json(&message).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());

    // It reaches the inbox as a photo with its caption, copied into the workspace's folder.
    let (_, inbound, conversation) = next_message(&mut live).await;
    assert_eq!(inbound.body, "transfer done");
    let photo = inbound.media.clone().expect("the message carries the photo");
    assert_eq!((photo.kind, photo.mime.as_str(), photo.size), (MediaKind::Image, "image/png", PNG.len() as u64));
    assert_ne!(photo.name, sent.name, "the workspace keeps its own copy");
    assert_eq!(std::fs::read(workspace_dir.join(photo.name.as_str())).unwrap(), PNG);

    // Agents of the workspace fetch it; nobody else learns it exists.
    let url = format!("{}/media/{}/{}", h.base(), channel.workspace_id.0, photo.name);
    let response = h.http.get(&url).header(COOKIE, &admin.cookie).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/png");
    assert_eq!(response.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().contains("sandbox"));
    assert_eq!(response.bytes().await.unwrap(), PNG);
    let anonymous = h.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let theirs = h.http.get(&url).header(COOKIE, &other.cookie).send().await.unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let escape = format!("{}/media/{}/..%2F..%2Fbalas.db", h.base(), channel.workspace_id.0);
    assert_eq!(h.http.get(&escape).header(COOKIE, &admin.cookie).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // An agent replies with a document and a caption; the customer's phone gets both.
    let (status, body) = upload(&h, "/api/media", Some(&admin), "invoice.pdf", "application/pdf", PDF.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let invoice: Media = serde_json::from_value(body).unwrap();
    assert_eq!((invoice.kind, invoice.file_name.as_deref()), (MediaKind::Document, Some("invoice.pdf")));
    // A file of a few megabytes goes through whole (no smaller limit hides in the way).
    let catalogue = [PDF, &vec![b' '; 3 * 1024 * 1024]].concat();
    let (status, body) =
        upload(&h, "/api/media", Some(&admin), "catalogue.pdf", "application/pdf", catalogue.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stored: Media = serde_json::from_value(body).unwrap();
    assert_eq!(std::fs::read(workspace_dir.join(stored.name.as_str())).unwrap(), catalogue);
    let id = conversation.0.to_string();
    let reply = [
        ("conversation", id.as_str()),
        ("text", "your invoice"),
        ("note", "false"),
        ("attachment[name]", invoice.name.as_str()),
        ("attachment[file_name]", "invoice.pdf"),
    ];
    let (status, body) = h.call(&admin, "reply", &reply).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let queued: Message = serde_json::from_value(body).unwrap();
    assert_eq!(queued.media.as_ref().map(|m| &m.name), Some(&invoice.name));
    let got: SandboxMessage = eventually(Duration::from_secs(20), "the customer's phone gets the invoice", || async {
        h.bus.sandbox_messages(&customer).await.unwrap().into_iter().find(|m| m.wa_id == queued.wa_id)
    })
    .await;
    assert_eq!(got.text, "your invoice");
    let on_phone = got.media.expect("the phone gets the file");
    assert_eq!((on_phone.kind, on_phone.file_name.as_deref()), (MediaKind::Document, Some("invoice.pdf")));
    assert_eq!(std::fs::read(h.settings.media_dir.join("sandbox").join(on_phone.name.as_str())).unwrap(), PDF);
    let on_network = h.http.get(format!("{}/sandbox/media/{}", h.base(), on_phone.name)).send().await.unwrap();
    assert_eq!(on_network.headers()["content-disposition"], "attachment", "documents are never shown inline");
    // The conversation list says what was sent.
    loop {
        if let LiveEvent::MessageStatus { message_id, .. } = live.event().await.event
            && message_id == queued.id
        {
            break;
        }
    }
    let (_, view) = h.call(&admin, "conversation", &[("id", &id)]).await;
    assert_eq!(view["conversation"]["last_preview"], "📄 invoice.pdf · your invoice", "{view}");
    worker.stop().await;
}

#[tokio::test]
async fn files_whatsapp_would_refuse_are_refused_and_nothing_is_kept() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 202", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    let customer = PhoneNumber::parse("+6281234567202").unwrap();
    h.customer_send(customer.as_str(), &channel.phone, "halo").await;
    let workspace_dir = h.settings.media_dir.join(channel.workspace_id.0.to_string());

    let (_, _, conversation) = next_message(&mut live).await;
    let id = conversation.0.to_string();

    // Not logged in: nothing is read.
    let (status, _) = upload(&h, "/api/media", None, "a.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A type WhatsApp does not send, a photo over 5 MB (refused from its declared length, and
    // while it streams when the length is not declared), a "photo" that is a web page, an empty
    // file, a name with a path.
    let (status, body) = upload(&h, "/api/media", Some(&admin), "a.gif", "image/gif", b"GIF89a".to_vec()).await;
    assert_eq!((status, file_issue(&body)), (StatusCode::UNPROCESSABLE_ENTITY, Issue::FileType));
    let big = [PNG, &vec![0u8; 5 * 1024 * 1024]].concat();
    let (status, body) = upload(&h, "/api/media", Some(&admin), "big.png", "image/png", big).await;
    assert_eq!((status, file_issue(&body)), (StatusCode::UNPROCESSABLE_ENTITY, Issue::FileTooLarge { max_mb: 5 }));
    let page = b"<html><script>alert(1)</script></html>".to_vec();
    let (status, body) = upload(&h, "/api/media", Some(&admin), "x.png", "image/png", page).await;
    assert_eq!((status, file_issue(&body)), (StatusCode::UNPROCESSABLE_ENTITY, Issue::FileType));
    let (status, body) = upload(&h, "/api/media", Some(&admin), "empty.pdf", "application/pdf", Vec::new()).await;
    assert_eq!((status, file_issue(&body)), (StatusCode::UNPROCESSABLE_ENTITY, Issue::Required));
    let (status, body) = upload(&h, "/api/media", Some(&admin), "../x.pdf", "application/pdf", PDF.to_vec()).await;
    assert_eq!((status, file_issue(&body)), (StatusCode::UNPROCESSABLE_ENTITY, Issue::NotAllowed));
    assert_eq!(files_in(&workspace_dir), Vec::<String>::new(), "nothing of a refused file is kept");

    // A reply may only send a file of its own workspace, and audio goes without a caption.
    let (_, body) = upload(&h, "/api/media", Some(&other), "theirs.pdf", "application/pdf", PDF.to_vec()).await;
    let theirs: Media = serde_json::from_value(body).unwrap();
    let (_, body) = upload(&h, "/api/media", Some(&admin), "voice.ogg", "audio/ogg", b"OggS-voice".to_vec()).await;
    let voice: Media = serde_json::from_value(body).unwrap();
    for (name, text, field, issue) in [
        (theirs.name.as_str(), "", Field::File, Issue::NotAllowed),
        ("0123456789abcdef0123456789abcdef.pdf", "", Field::File, Issue::NotAllowed),
        ("../../balas.db", "", Field::File, Issue::NotAllowed),
        (voice.name.as_str(), "listen to this", Field::Text, Issue::NotAllowed),
    ] {
        let form = [
            ("conversation", id.as_str()),
            ("text", text),
            ("note", "false"),
            ("attachment[name]", name),
            ("attachment[file_name]", "f"),
        ];
        let (status, body) = h.call(&admin, "reply", &form).await;
        let error: AppError = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(error.field_errors(field).next().map(|e| e.issue), Some(issue), "{name}: {body}");
    }
    // Nothing was queued by the refused replies.
    let (_, view) = h.call(&admin, "conversation", &[("id", &id)]).await;
    assert_eq!(view["messages"].as_array().unwrap().len(), 1, "{view}");
    worker.stop().await;
}
