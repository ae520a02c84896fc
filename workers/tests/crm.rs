//! The CRM against the whole pipeline (server, worker, sandbox network, real Redis and SQLite): a
//! customer who sends a stop keyword is opted out and confirmed once, a start keyword brings them
//! back; agents see and change the state (audited); labels are the admins'; another workspace
//! reaches none of it. CSV imports report bad lines and update rather than duplicate; exports
//! follow the list's filter and read back.

mod common;

use std::time::Duration;

use balas_domain::{AppError, ContactPage, ImportReport, ImportUpdate, PhoneNumber, SandboxMessage};
use common::{Harness, eventually, next_message, wait_connected};
use reqwest::StatusCode;

/// The messages the customer's phone got from the channel.
async fn received(h: &Harness, customer: &PhoneNumber) -> Vec<SandboxMessage> {
    h.bus.sandbox_messages(customer).await.unwrap()
}

#[tokio::test]
async fn stop_and_start_keywords_change_the_subscription_once_each() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 301", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    let customer = PhoneNumber::parse("+6281234567301").unwrap();

    h.customer_send(customer.as_str(), &channel.phone, "Halo").await;
    next_message(&mut live).await;
    assert!(received(&h, &customer).await.is_empty());

    // "stop!" opts the customer out: one confirmation, an audit entry without an actor.
    h.customer_send(customer.as_str(), &channel.phone, "stop!").await;
    let confirmations = eventually(Duration::from_secs(20), "the opt-out is confirmed", || async {
        let got = received(&h, &customer).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert!(confirmations[0].text.contains("no longer receive broadcasts"), "{confirmations:?}");
    let (status, body) = h.call(&admin, "contacts", &[("page", "0")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page: ContactPage = serde_json::from_value(body).unwrap();
    let contact = page.contacts.iter().find(|c| c.phone == customer).expect("the customer is a contact");
    assert!(contact.opted_out());
    let (_, audit) = h.call(&admin, "audit_log", &[]).await;
    assert!(audit.to_string().contains("contact_opted_out"), "{audit}");

    // Saying it again changes nothing and sends nothing.
    let marker = h.customer_send(customer.as_str(), &channel.phone, "STOP").await;
    eventually(Duration::from_secs(20), "the second STOP is stored", || async {
        h.store.message_by_wa_id(channel.id, &marker).await.unwrap()
    })
    .await;
    let also = h.customer_send(customer.as_str(), &channel.phone, "ok thanks").await;
    eventually(Duration::from_secs(20), "a later message is stored", || async {
        h.store.message_by_wa_id(channel.id, &also).await.unwrap()
    })
    .await;
    assert_eq!(received(&h, &customer).await.len(), 1, "one confirmation however often STOP is sent");

    // "Mulai" subscribes again, confirmed once.
    h.customer_send(customer.as_str(), &channel.phone, "Mulai").await;
    let back = eventually(Duration::from_secs(20), "the opt-in is confirmed", || async {
        let got = received(&h, &customer).await;
        (got.len() == 2).then_some(got)
    })
    .await;
    assert!(back[1].text.contains("receive our broadcasts again"), "{back:?}");
    let contact = h.store.contact_by_phone(channel.workspace_id, &customer).await.unwrap().unwrap();
    assert!(!contact.opted_out());

    // An agent may change it too; another workspace cannot, and sees none of these contacts.
    let id = contact.id.0.to_string();
    let (status, body) = h.call(&admin, "set_opted_out", &[("id", &id), ("opted_out", "true")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["opted_out_at"].is_number(), "{body}");
    let (status, body) = h.call(&other, "set_opted_out", &[("id", &id), ("opted_out", "false")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, body) = h.call(&other, "contacts", &[("page", "0")]).await;
    assert_eq!(body["total"], 0, "{body}");
    assert!(h.store.contact_by_phone(channel.workspace_id, &customer).await.unwrap().unwrap().opted_out());
    worker.stop().await;
}

#[tokio::test]
async fn labels_are_managed_by_admins_and_used_by_agents() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 302", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    h.customer_send("+6281234567302", &channel.phone, "Halo").await;
    let (_, message, _) = next_message(&mut live).await;
    let customer = PhoneNumber::parse("+6281234567302").unwrap();
    let contact = h.store.contact_by_phone(message.workspace_id, &customer).await.unwrap().unwrap();
    let contact = contact.id.0.to_string();

    // Bad input is refused with the field; nothing is created.
    let (status, body) = h.call(&admin, "create_label", &[("name", "  "), ("color", "#ff0000")]).await;
    let error: AppError = serde_json::from_value(body).unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error.field_errors(balas_domain::Field::Name).count() + error.field_errors(balas_domain::Field::Color).count(),
        2
    );
    let (status, body) = h.call(&admin, "create_label", &[("name", "VIP"), ("color", "purple")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let vip = body[0]["id"].to_string();
    let (status, _) = h.call(&admin, "create_label", &[("name", "vip"), ("color", "red")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "names are unique in any case");

    // An agent labels contacts but cannot manage labels.
    let member = [
        ("name", "Budi Agent"),
        ("email", "budi@example.com"),
        ("role", "agent"),
        ("onboarding", "initial_password"),
        ("initial_password", "initial-pass-1"),
    ];
    let (status, body) = h.call(&admin, "add_member", &member).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let agent = h.log_in("budi@example.com", "initial-pass-1").await;
    let change = [("current_password", "initial-pass-1"), ("new_password", "budi-own-password")];
    let (status, body) = h.call(&agent, "change_password", &change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = h.call(&agent, "create_label", &[("name", "Mine"), ("color", "red")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let form = [("label", vip.as_str()), ("contacts[0]", contact.as_str()), ("on", "true")];
    let (status, body) = h.call(&agent, "label_contacts", &form).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!(1)));
    let (_, page) = h.call(&agent, "contacts", &[("filter[label]", &vip), ("page", "0")]).await;
    assert_eq!(page["total"], 1, "{page}");
    let (status, _) = h.call(&agent, "label_contacts", &[("label", vip.as_str()), ("on", "true")]).await;
    assert_ne!(status, StatusCode::OK, "an empty selection is refused");
    worker.stop().await;
}

/// Imports `csv` with `map` and `mode`; returns the status and the report (the last line).
/// (The client asks for gzip, as browsers do: the answer streams through the compression layer.)
async fn import(h: &Harness, who: &common::Browser, csv: &[u8], map: &str, mode: &str) -> (StatusCode, ImportReport) {
    // Asks for gzip and decompresses, as a browser does.
    let browser = reqwest::Client::builder().gzip(true).build().unwrap();
    let response = browser
        .post(format!("{}/api/contacts/import", h.base()))
        .query(&[("map", map), ("mode", mode)])
        .header(reqwest::header::COOKIE, &who.cookie)
        .body(csv.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let last = text.lines().last().unwrap_or_else(|| panic!("no answer: {text}"));
    match serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}")) {
        ImportUpdate::Done { report } => (status, report),
        other => panic!("the import did not finish: {other:?} in {text}"),
    }
}

#[tokio::test]
async fn csv_imports_report_bad_lines_update_existing_contacts_and_export_round_trips() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    h.call(&admin, "create_label", &[("name", "VIP"), ("color", "purple")]).await;
    let file = "Nama,Nomor WA,Email,Label\n\
                Sari,+62 812 3456 0001,sari@example.com,VIP\n\
                Budi,0812,budi@example.com,\n\
                Citra,+6281234560003,not-an-email,\n\
                Dewi,+6281234560004,,Gold\n\
                \"Eko, Jr.\",+6281234560005,,\n\
                Sari Dewi,+6281234560001,,\n";
    let map = "name,phone,email,labels";

    // All or nothing: the bad lines are reported and nothing is written.
    let (status, report) = import(&h, &admin, file.as_bytes(), map, "all_or_nothing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(report.nothing_imported);
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3, 4, 5], "{report:?}");
    let (_, page) = h.call(&admin, "contacts", &[("page", "0")]).await;
    assert_eq!(page["total"], 0, "{page}");

    // The valid rows: two new contacts (the repeated number counts once, the later row wins).
    let (_, report) = import(&h, &admin, file.as_bytes(), map, "valid_rows").await;
    assert_eq!((report.rows, report.created, report.updated), (6, 2, 0), "{report:?}");
    let reasons: Vec<(u64, &str)> = report.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert!(reasons[0].1.contains("same number as line 7"), "{reasons:?}");
    assert!(reasons[1].1.contains("invalid phone number “0812”"), "{reasons:?}");
    assert!(reasons[2].1.contains("invalid email"), "{reasons:?}");
    assert!(reasons[3].1.contains("unknown label “Gold”"), "{reasons:?}");
    let (_, found) = h.call(&admin, "contacts", &[("filter[search]", "+62 812 3456 0001"), ("page", "0")]).await;
    assert_eq!(found["contacts"][0]["name"], "Sari Dewi", "{found}");

    // Importing again updates, never duplicates; a label column adds labels.
    let again = "phone,labels\n+6281234560005,VIP\n";
    let (_, report) = import(&h, &admin, again.as_bytes(), "phone,labels", "valid_rows").await;
    assert_eq!((report.created, report.updated, report.rejected.len()), (0, 1, 0), "{report:?}");
    let (_, page) = h.call(&admin, "contacts", &[("page", "0")]).await;
    assert_eq!(page["total"], 2, "{page}");

    // Files that cannot be read are refused whole, with the reason.
    let latin1 = b"name,phone\nJos\xe9,+6281234560009\n";
    let (_, report) = import(&h, &admin, latin1, "name,phone", "valid_rows").await;
    assert!(report.refused.as_deref().unwrap().contains("UTF-8"), "{report:?}");
    let (status, report) = import(&h, &admin, b"a,b\n1,2\n", "name,email", "valid_rows").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(report.refused.as_deref().unwrap().contains("phone"), "{report:?}");
    let garbage: Vec<u8> = (0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let (_, report) = import(&h, &admin, &garbage, "phone", "valid_rows").await;
    assert!(report.refused.is_some() && report.nothing_imported, "{report:?}");
    let (_, page) = h.call(&other, "contacts", &[("page", "0")]).await;
    assert_eq!(page["total"], 0, "the other workspace got nothing: {page}");

    // Export the filtered list; it reads back as the same contacts.
    let labels: serde_json::Value = h.call(&admin, "labels", &[]).await.1;
    let vip = labels[0]["id"].to_string();
    let csv = h
        .http
        .get(format!("{}/api/contacts/export.csv", h.base()))
        .query(&[("label", vip.as_str())])
        .header(reqwest::header::COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "phone,name,email,labels,opted_out,created_at,last_message_at");
    assert_eq!(rows.len(), 2, "only the VIP: {csv}");
    assert!(rows[1].starts_with("+6281234560005,\"Eko, Jr.\",,VIP,no,"), "{csv}");
    let (_, report) = import(&h, &admin, csv.as_bytes(), "phone,name,email,labels,opted_out", "all_or_nothing").await;
    assert_eq!((report.updated, report.rejected.len()), (1, 0), "{report:?}");
    let anonymous = h.http.get(format!("{}/api/contacts/export.csv", h.base())).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
