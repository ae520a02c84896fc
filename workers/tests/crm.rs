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
    let agent = h.agent(&admin, "budi@example.com").await;
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

/// The field errors of a refused call.
fn issues(body: serde_json::Value, field: balas_domain::Field) -> Vec<balas_domain::Issue> {
    let error: AppError = serde_json::from_value(body).unwrap();
    error.field_errors(field).map(|e| e.issue).collect()
}

#[tokio::test]
async fn custom_attributes_are_checked_on_every_write_filtered_and_carried_by_csv() {
    use balas_domain::{Field, Issue};
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;

    // Admins define attributes; every part of a definition is checked.
    let bad = [("name", " "), ("key", "Bad Key"), ("kind", "colour")];
    let (status, body) = h.call(&admin, "create_attribute", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(issues(body.clone(), Field::AttributeKey), [Issue::InvalidKey]);
    assert_eq!(issues(body, Field::AttributeKind), [Issue::NotAllowed]);
    let (status, body) = h.call(&admin, "create_attribute", &[("name", "Tier"), ("kind", "one_of")]).await;
    assert_eq!(issues(body, Field::AttributeOptions), [Issue::Required], "{status}");
    let tier = [("name", "Tier"), ("kind", "one_of"), ("options", "Gold\nSilver")];
    let (status, body) = h.call(&admin, "create_attribute", &tier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = h.call(&admin, "create_attribute", &[("name", "Birthday"), ("kind", "date")]).await;
    assert_eq!(body[1]["key"], "birthday", "the key is made from the name: {body}");
    let (status, body) = h.call(&admin, "create_attribute", &[("name", "tier"), ("kind", "text")]).await;
    assert_eq!((status, issues(body, Field::AttributeKey)), (StatusCode::UNPROCESSABLE_ENTITY, vec![Issue::Taken]));
    let tier_id = body_id(&h, &admin, "tier").await;

    // An agent fills them in but cannot define them.
    let agent = h.agent(&admin, "budi@example.com").await;
    let (status, _) = h.call(&agent, "create_attribute", &[("name", "City"), ("kind", "text")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let wrong = [
        ("name", "Sari"),
        ("phone", "+62 812 3456 0001"),
        ("email", ""),
        ("attributes[tier]", "Bronze"),
        ("attributes[birthday]", "31/02/1990"),
        ("attributes[shoe_size]", "42"),
    ];
    let (status, body) = h.call(&agent, "create_contact", &wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut found = issues(body, Field::Attribute);
    found.sort_by_key(|i| format!("{i:?}"));
    assert_eq!(found, [Issue::InvalidDate, Issue::NotAllowed, Issue::UnknownAttribute]);
    let (_, page) = h.call(&admin, "contacts", &[("page", "0")]).await;
    assert_eq!(page["total"], 0, "nothing was created: {page}");
    let right = [
        ("name", "Sari"),
        ("phone", "+62 812 3456 0001"),
        ("email", ""),
        ("attributes[tier]", "gold"),
        ("attributes[birthday]", "7/3/1990"),
    ];
    let (status, sari) = h.call(&agent, "create_contact", &right).await;
    assert_eq!(status, StatusCode::OK, "{sari}");
    assert_eq!(
        (sari["attributes"]["tier"].as_str(), sari["attributes"]["birthday"].as_str()),
        (Some("Gold"), Some("1990-03-07"))
    );
    let (status, body) = h.call(&agent, "create_contact", &right).await;
    assert_eq!((status, issues(body, Field::Phone)), (StatusCode::UNPROCESSABLE_ENTITY, vec![Issue::Taken]));

    // The list filters on an attribute; a filter value that cannot be is refused.
    let by_tier = [
        ("filter[attribute][attribute]", tier_id.as_str()),
        ("filter[attribute][op]", "is"),
        ("filter[attribute][value]", "GOLD"),
        ("page", "0"),
    ];
    let (status, page) = h.call(&agent, "contacts", &by_tier).await;
    assert_eq!((status, page["total"].clone()), (StatusCode::OK, serde_json::json!(1)), "{page}");
    let silly = [
        ("filter[attribute][attribute]", tier_id.as_str()),
        ("filter[attribute][op]", "at_least"),
        ("filter[attribute][value]", "Gold"),
        ("page", "0"),
    ];
    let (status, _) = h.call(&agent, "contacts", &silly).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a list has no order");
    let (status, body) = h.call(&other, "contacts", &by_tier).await;
    assert_eq!(issues(body, Field::Attribute), [Issue::UnknownAttribute], "not another workspace's: {status}");

    // CSV: an attribute column by key; a bad value names the line, the attribute and why.
    let file = "phone,tier,birthday\n+6281234560001,Silver,\n+6281234560002,Bronze,\n+6281234560003,,31/02/1990\n";
    let (_, report) = import(&h, &admin, file.as_bytes(), "phone,attr:tier,attr:birthday", "valid_rows").await;
    assert_eq!((report.created, report.updated), (0, 1), "{report:?}");
    let reasons: Vec<(u64, &str)> = report.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(reasons[0].0, 3);
    assert!(reasons[0].1.contains("tier: “Bronze” is not one of Gold, Silver"), "{reasons:?}");
    assert!(reasons[1].1.contains("birthday: “31/02/1990” is not a date"), "{reasons:?}");
    let (_, report) = import(&h, &admin, file.as_bytes(), "phone,attr:colour", "valid_rows").await;
    assert!(report.refused.as_deref().unwrap().contains("no attribute “colour”"), "{report:?}");
    let csv = h
        .http
        .get(format!("{}/api/contacts/export.csv", h.base()))
        .query(&[("attribute", tier_id.as_str()), ("attribute_op", "is"), ("attribute_value", "silver")])
        .header(reqwest::header::COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "phone,name,email,labels,opted_out,created_at,last_message_at,tier,birthday");
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].starts_with("+6281234560001,Sari,") && rows[1].ends_with(",Silver,1990-03-07"), "{csv}");

    // A list cannot drop an option a contact has; deleting the attribute is an admin's.
    let (status, body) =
        h.call(&admin, "update_attribute", &[("id", tier_id.as_str()), ("name", "Tier"), ("options", "Gold")]).await;
    assert_eq!((status, issues(body, Field::AttributeOptions)), (StatusCode::UNPROCESSABLE_ENTITY, vec![Issue::InUse]));
    let (status, _) = h.call(&agent, "delete_attribute", &[("id", tier_id.as_str())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.call(&other, "delete_attribute", &[("id", tier_id.as_str())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another workspace's attribute");
    let (status, body) = h.call(&admin, "delete_attribute", &[("id", tier_id.as_str())]).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (_, audit) = h.call(&admin, "audit_log", &[]).await;
    assert!(audit.to_string().contains("attribute_deleted"), "{audit}");
}

/// The id of the caller's attribute with `key`.
async fn body_id(h: &Harness, who: &common::Browser, key: &str) -> String {
    let (_, list) = h.call(who, "attributes", &[]).await;
    let found = list.as_array().unwrap().iter().find(|a| a["key"] == key).unwrap_or_else(|| panic!("{list}"));
    found["id"].to_string()
}

#[tokio::test]
async fn merging_conversation_labels_and_stop_keywords_go_through_the_pipeline() {
    use balas_domain::{Field, Issue};
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let other = h.other_workspace().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 303", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    let agent = h.agent(&admin, "budi@example.com").await;

    // Two numbers of the same person wrote in; an agent merges them.
    h.customer_send("+6281234567303", &channel.phone, "Halo").await;
    next_message(&mut live).await;
    h.customer_send("+6281234567304", &channel.phone, "It's me again, new number").await;
    next_message(&mut live).await;
    let contact_of = |number: &str| {
        let number = PhoneNumber::parse(number).unwrap();
        let store = h.store.clone();
        async move { store.contact_by_phone(channel.workspace_id, &number).await.unwrap().unwrap().id.0.to_string() }
    };
    let keep = contact_of("+6281234567303").await;
    let gone = contact_of("+6281234567304").await;
    let (status, _) = h.call(&other, "merge_contacts", &[("keep", keep.as_str()), ("other", gone.as_str())]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = h.call(&agent, "merge_contacts", &[("keep", keep.as_str()), ("other", keep.as_str())]).await;
    assert_eq!((status, issues(body, Field::Contacts)), (StatusCode::UNPROCESSABLE_ENTITY, vec![Issue::Duplicate]));
    let (status, merged) = h.call(&agent, "merge_contacts", &[("keep", keep.as_str()), ("other", gone.as_str())]).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["phone"], "+6281234567303");
    let (_, view) = h.call(&agent, "contact", &[("id", keep.as_str())]).await;
    assert_eq!(view["conversations"].as_array().map(Vec::len), Some(1), "one conversation on the channel: {view}");
    let conversation = view["conversations"][0]["id"].to_string();
    let (_, chat) = h.call(&agent, "conversation", &[("id", conversation.as_str())]).await;
    let texts = chat.to_string();
    assert!(texts.contains("Halo") && texts.contains("new number"), "both histories: {chat}");
    let (_, audit) = h.call(&admin, "audit_log", &[]).await;
    assert!(audit.to_string().contains("contacts_merged"), "{audit}");

    // A label on the conversation: every dashboard hears of it; not another workspace's.
    let (_, labels) = h.call(&admin, "create_label", &[("name", "Refund"), ("color", "red")]).await;
    let refund = labels[0]["id"].to_string();
    let form = [("conversation", conversation.as_str()), ("label", refund.as_str()), ("on", "true")];
    let (status, summary) = h.call(&agent, "label_conversation", &form).await;
    assert_eq!(
        (status, summary["labels"].clone()),
        (StatusCode::OK, serde_json::json!([labels[0]["id"]])),
        "{summary}"
    );
    loop {
        // (Each frame waits with its own deadline.)
        if let balas_domain::LiveEvent::ConversationUpdated { conversation: c } = live.event().await.event
            && !c.labels.is_empty()
        {
            break;
        }
    }
    let (status, _) = h.call(&other, "label_conversation", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "as for every inbox action on another workspace's conversation");

    // Stop keywords: the admin's; checked; then a customer's "cukup" opts them out.
    let (status, _) = h.call(&agent, "set_stop_keywords", &[("keywords", "CUKUP")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (bad, issue) in [("START", Issue::NotAllowed), ("", Issue::Required), ("a\nA", Issue::Duplicate)] {
        let (status, body) = h.call(&admin, "set_stop_keywords", &[("keywords", bad)]).await;
        assert_eq!((status, issues(body, Field::Keywords)), (StatusCode::UNPROCESSABLE_ENTITY, vec![issue]), "{bad:?}");
    }
    let (status, words) = h.call(&admin, "set_stop_keywords", &[("keywords", "cukup!\n  jangan   kirim ")]).await;
    assert_eq!((status, words), (StatusCode::OK, serde_json::json!(["CUKUP", "JANGAN KIRIM"])));
    let customer = PhoneNumber::parse("+6281234567303").unwrap();
    h.customer_send(customer.as_str(), &channel.phone, "Cukup.").await;
    eventually(Duration::from_secs(20), "the new keyword opts the customer out", || async {
        let contact = h.store.contact_by_phone(channel.workspace_id, &customer).await.unwrap().unwrap();
        contact.opted_out().then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_merge_reaches_every_dashboard_live() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin().await;
    let channel = h.create_channel(&admin, "Sales", "+62 811 3000 303", 5).await;
    let mut live = h.live(&admin, None).await;
    let worker = h.worker();
    wait_connected(&mut live, &channel).await;
    // The same customer on two numbers: two contacts, two conversations on one channel.
    h.customer_send("+6281234567303", &channel.phone, "Halo").await;
    let (_, first, keep_conversation) = next_message(&mut live).await;
    h.customer_send("+6281234567304", &channel.phone, "this is my other number").await;
    let (_, _, other_conversation) = next_message(&mut live).await;
    let contact = |phone: &str| {
        let (store, phone) = (h.store.clone(), PhoneNumber::parse(phone).unwrap());
        async move { store.contact_by_phone(first.workspace_id, &phone).await.unwrap().unwrap().id.0.to_string() }
    };
    let (keep, other) = (contact("+6281234567303").await, contact("+6281234567304").await);

    let (status, body) = h.call(&admin, "merge_contacts", &[("keep", keep.as_str()), ("other", other.as_str())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The other conversation is gone into the kept one, which now holds both unread messages.
    let mut removed = false;
    let joined = loop {
        match live.event().await.event {
            balas_domain::LiveEvent::ConversationRemoved { conversation_id, into } => {
                assert_eq!((conversation_id, into), (other_conversation, keep_conversation));
                removed = true;
            }
            balas_domain::LiveEvent::ConversationUpdated { conversation } if conversation.id == keep_conversation => {
                break conversation;
            }
            _ => {}
        }
    };
    assert!(removed, "the removal comes before the update");
    assert_eq!((joined.unread, joined.last_preview.as_deref()), (2, Some("this is my other number")));
    worker.stop().await;
}
