//! The server end to end over HTTP, on a real Redis and a real SQLite file: setup, login, lockout,
//! roles, sessions, invites, and what bad input does (and does not do).

use std::time::Duration;

use balas_backend::Settings;
use balas_bus::{Bus, LoginSubject};
use balas_domain::{Email, Timestamp};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use secrecy::SecretString;
use serde_json::{Value, json};

struct TestServer {
    base: String,
    bus: Bus,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _db: balas_testkit::TestDatabase,
}

impl TestServer {
    async fn start() -> Self {
        let db = balas_testkit::sqlite();
        let prefix = balas_testkit::redis_prefix();
        let settings = Settings {
            database_url: SecretString::from(db.url.clone()),
            redis_url: SecretString::from(balas_testkit::redis_url()),
            redis_prefix: prefix.clone(),
            ..Settings::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(balas_server::launch(settings, listener, async {
            let _ = stopped.await;
        }));
        let bus = Bus::connect(&balas_testkit::redis_url(), &prefix).await.unwrap();
        Self { base, bus, stop: Some(stop), task: Some(task), _db: db }
    }

    /// A browser-like client with its own cookie jar, that does not follow redirects.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
    }

    /// Calls a server function with form fields; returns the status and the JSON body.
    async fn call(&self, client: &reqwest::Client, name: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = client.post(format!("{}/api/{name}", self.base)).form(form).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn set_up(&self, client: &reqwest::Client) {
        let (status, body) = self
            .call(
                client,
                "setup",
                &[
                    ("workspace_name", "Toko Maju"),
                    ("name", "Ana Admin"),
                    ("email", "ana@example.com"),
                    ("password", "admin-password-1"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn log_in(&self, email: &str, password: &str) -> reqwest::Client {
        let client = self.client();
        let (status, body) = self.call(&client, "login", &[("email", email), ("password", password)]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        client
    }

    async fn add_agent(&self, admin: &reqwest::Client, email: &str) {
        let (status, body) = self
            .call(
                admin,
                "add_member",
                &[
                    ("name", "Budi Agent"),
                    ("email", email),
                    ("role", "agent"),
                    ("onboarding", "initial_password"),
                    ("initial_password", "initial-pass-1"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap()).await;
        result.expect("server stops within 10 s").unwrap().unwrap();
    }
}

fn error_kind(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("not an error body: {body}"))
}

fn invalid_fields(body: &Value) -> Vec<String> {
    assert_eq!(error_kind(body), "invalid", "{body}");
    body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn first_run_setup_then_login_and_logout() {
    let server = TestServer::start().await;
    let browser = server.client();

    // Before setup every page leads to the setup page.
    let page = browser.get(format!("{}/inbox", server.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()[LOCATION], "/setup");
    let (_, needs) = server.call(&browser, "needs_setup", &[]).await;
    assert_eq!(needs, json!(true));

    // Bad input: every problem is reported against its field, and nothing is created.
    let (status, body) = server
        .call(
            &browser,
            "setup",
            &[("workspace_name", ""), ("name", "a\u{7}b"), ("email", "not-an-email"), ("password", "short")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut fields = invalid_fields(&body);
    fields.sort();
    assert_eq!(fields, ["email", "name", "password", "workspace_name"]);
    let (_, needs) = server.call(&browser, "needs_setup", &[]).await;
    assert_eq!(needs, json!(true), "a rejected setup changes nothing");

    server.set_up(&browser).await;
    let (status, me) = server.call(&browser, "me", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str(), me["workspace_name"].as_str()),
        (Some("Ana Admin"), Some("admin"), Some("Toko Maju"))
    );

    // Setup happens once.
    let (status, body) = server
        .call(
            &server.client(),
            "setup",
            &[
                ("workspace_name", "Evil"),
                ("name", "Eve"),
                ("email", "eve@example.com"),
                ("password", "eve-password-1"),
            ],
        )
        .await;
    assert_eq!((status, error_kind(&body)), (StatusCode::CONFLICT, "already_set_up"));
    let setup_page = server.client().get(format!("{}/setup", server.base)).send().await.unwrap();
    assert_eq!(setup_page.headers()[LOCATION], "/login");

    // Logged in, the dashboard renders; without a session it sends you to login.
    let inbox = browser.get(format!("{}/inbox", server.base)).send().await.unwrap();
    assert_eq!(inbox.status(), StatusCode::OK);
    assert!(inbox.text().await.unwrap().contains("Ana Admin"));
    let anonymous = server.client().get(format!("{}/inbox", server.base)).send().await.unwrap();
    assert_eq!(anonymous.headers()[LOCATION], "/login");

    // Log out, then the same cookie value no longer works: the session was ended on the server.
    let login = server
        .client()
        .post(format!("{}/api/login", server.base))
        .form(&[("email", "ana@example.com"), ("password", "admin-password-1")])
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("balas_session="))
        .expect("session cookie");
    let set_cookie = login
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let with_cookie =
        |name: &str| reqwest::Client::new().post(format!("{}/api/{name}", server.base)).header(COOKIE, cookie.clone());
    assert_eq!(with_cookie("me").send().await.unwrap().json::<Value>().await.unwrap()["name"], "Ana Admin");
    assert_eq!(with_cookie("logout").send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(with_cookie("me").send().await.unwrap().json::<Value>().await.unwrap(), Value::Null);
    assert_eq!(with_cookie("members").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    server.stop().await;
}

#[tokio::test]
async fn wrong_passwords_slow_down_then_lock_the_account() {
    let server = TestServer::start().await;
    let admin = server.client();
    server.set_up(&admin).await;
    server.add_agent(&admin, "budi@example.com").await;
    let client = server.client();

    let (status, body) =
        server.call(&client, "login", &[("email", "ana@example.com"), ("password", "wrong-password")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    // An unknown account gets the same answer as a wrong password.
    let (status, body) =
        server.call(&client, "login", &[("email", "nobody@example.com"), ("password", "wrong-password")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    for _ in 0..4 {
        server.call(&client, "login", &[("email", "ana@example.com"), ("password", "wrong-password")]).await;
    }
    // Two more failures as soon as the waits allow (a script's pace): the wait grows to seconds, so
    // the next request is inside it even on a busy machine (hashing a password takes a while in a
    // debug build).
    let ana = [LoginSubject::Account(Email::parse("ana@example.com").unwrap())];
    let now = balas_backend::now().0;
    for at in [now + 1_100, now + 3_200] {
        let attempt = server.bus.begin_password_attempt(&ana, Timestamp(at)).await.unwrap();
        assert!(matches!(attempt, balas_bus::Attempt::Counted { .. }), "{attempt:?}");
    }
    // Seven failures: even the right password has to wait now.
    let (status, body) =
        server.call(&client, "login", &[("email", "ana@example.com"), ("password", "admin-password-1")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"), "{body}");
    assert_eq!(body["locked"], json!(false));
    assert!(body["retry_after_secs"].as_u64().unwrap() >= 1);

    // Nine failures spread over the last minutes (as a patient guesser would make them), then one
    // more wrong password locks the account.
    let budi = [LoginSubject::Account(Email::parse("budi@example.com").unwrap())];
    let start = balas_backend::now().0 - 10 * 60_000;
    for i in 0..9 {
        server.bus.begin_password_attempt(&budi, Timestamp(start + i * 61_000)).await.unwrap();
    }
    let (status, body) =
        server.call(&client, "login", &[("email", "budi@example.com"), ("password", "wrong-password")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"), "{body}");
    let (status, body) =
        server.call(&client, "login", &[("email", "budi@example.com"), ("password", "initial-pass-1")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"), "{body}");
    assert_eq!(body["locked"], json!(true));
    assert!(body["retry_after_secs"].as_u64().unwrap() > 600, "locked for about 15 minutes: {body}");

    let (_, log) = server.call(&admin, "audit_log", &[]).await;
    assert_eq!(
        (log[0]["action"].as_str(), log[0]["subject"].as_str()),
        (Some("account_locked"), Some("budi@example.com"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_only_the_free_tries() {
    let server = TestServer::start().await;
    server.set_up(&server.client()).await;
    let guesses = (0..30).map(|i| {
        let server = &server;
        async move {
            let client = server.client();
            let password = format!("guess-{i}");
            server.call(&client, "login", &[("email", "ana@example.com"), ("password", password.as_str())]).await.0
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
    server.stop().await;
}

#[tokio::test]
async fn agents_get_403_from_every_admin_function_and_strangers_401() {
    let server = TestServer::start().await;
    let admin = server.client();
    server.set_up(&admin).await;
    server.add_agent(&admin, "budi@example.com").await;
    let agent = server.log_in("budi@example.com", "initial-pass-1").await;
    let (_, me) = server.call(&agent, "me", &[]).await;
    assert_eq!((me["role"].as_str(), me["must_change_password"].as_bool()), (Some("agent"), Some(true)));
    let agent_id = me["user_id"].as_i64().unwrap().to_string();
    let (_, admin_me) = server.call(&admin, "me", &[]).await;
    let admin_id = admin_me["user_id"].as_i64().unwrap().to_string();

    let admin_calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("members", vec![]),
        ("audit_log", vec![]),
        (
            "add_member",
            vec![("name", "X"), ("email", "x@example.com"), ("role", "admin"), ("onboarding", "invite_link")],
        ),
        ("set_role", vec![("user_id", &agent_id), ("role", "admin")]),
        ("set_role", vec![("user_id", &admin_id), ("role", "agent")]),
        // An id that does not exist gets the same 403: the answer does not reveal what exists.
        ("set_role", vec![("user_id", "987654"), ("role", "admin")]),
    ];
    let stranger = server.client();
    for (name, form) in &admin_calls {
        let (status, body) = server.call(&agent, name, form).await;
        assert_eq!((status, error_kind(&body)), (StatusCode::FORBIDDEN, "forbidden"), "agent calling {name}");
        let (status, body) = server.call(&stranger, name, form).await;
        assert_eq!(
            (status, error_kind(&body)),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "stranger calling {name}"
        );
    }
    // Nothing changed: the agent is still an agent, nobody was added.
    let (_, members) = server.call(&admin, "members", &[]).await;
    assert_eq!(members.as_array().unwrap().len(), 2);
    assert!(members.as_array().unwrap().iter().any(|m| m["email"] == "budi@example.com" && m["role"] == "agent"));

    // For an admin, an unknown member is 404, and the last admin cannot step down.
    let (status, _) = server.call(&admin, "set_role", &[("user_id", "987654"), ("role", "admin")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = server.call(&admin, "set_role", &[("user_id", &admin_id), ("role", "agent")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::CONFLICT, "last_admin"));
    let (status, body) = server.call(&admin, "set_role", &[("user_id", &agent_id), ("role", "owner")]).await;
    assert_eq!(invalid_fields(&body), ["role"], "{status}");

    // Promoted, the agent may do admin things once they have replaced the initial password an
    // admin gave them; the change is audited.
    let (status, _) = server.call(&admin, "set_role", &[("user_id", &agent_id), ("role", "admin")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server.call(&agent, "members", &[]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::FORBIDDEN, "password_change_required"));
    let (status, _) = server
        .call(&agent, "change_password", &[("current_password", "initial-pass-1"), ("new_password", "budi-own-pass-1")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.call(&agent, "members", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, log) = server.call(&admin, "audit_log", &[]).await;
    assert_eq!((log[1]["action"].as_str(), log[1]["detail"].as_str()), (Some("role_changed"), Some("→ admin")));
    assert_eq!(log[0]["action"], "password_changed");

    server.stop().await;
}

#[tokio::test]
async fn password_change_checks_the_current_one_and_ends_other_sessions() {
    let server = TestServer::start().await;
    let admin = server.client();
    server.set_up(&admin).await;
    server.add_agent(&admin, "budi@example.com").await;
    let phone = server.log_in("budi@example.com", "initial-pass-1").await;
    let laptop = server.log_in("budi@example.com", "initial-pass-1").await;

    let (status, body) = server
        .call(&laptop, "change_password", &[("current_password", "not-it-at-all"), ("new_password", "budi-own-pass-1")])
        .await;
    assert_eq!((status, error_kind(&body)), (StatusCode::UNAUTHORIZED, "bad_credentials"));
    let (_, body) = server
        .call(&laptop, "change_password", &[("current_password", "initial-pass-1"), ("new_password", "short")])
        .await;
    assert_eq!(invalid_fields(&body), ["new_password"]);
    let (_, body) = server
        .call(&laptop, "change_password", &[("current_password", "initial-pass-1"), ("new_password", "initial-pass-1")])
        .await;
    assert_eq!(invalid_fields(&body), ["new_password"]);
    // Nothing above changed the password.
    server.log_in("budi@example.com", "initial-pass-1").await;

    let (status, _) = server
        .call(
            &laptop,
            "change_password",
            &[("current_password", "initial-pass-1"), ("new_password", "budi-own-pass-1")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = server.call(&laptop, "me", &[]).await;
    assert_eq!(me["must_change_password"], json!(false));
    let (_, me) = server.call(&phone, "me", &[]).await;
    assert_eq!(me, Value::Null, "the other session ended");
    let (status, _) =
        server.call(&server.client(), "login", &[("email", "budi@example.com"), ("password", "initial-pass-1")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let tablet = server.log_in("budi@example.com", "budi-own-pass-1").await;

    // "Log out everywhere" ends this session and every other one.
    let (status, _) = server.call(&tablet, "logout_everywhere", &[]).await;
    assert_eq!(status, StatusCode::OK);
    for (device, client) in [("tablet", &tablet), ("laptop", &laptop)] {
        let (_, me) = server.call(client, "me", &[]).await;
        assert_eq!(me, Value::Null, "{device} was logged out");
    }
    server.stop().await;
}

#[tokio::test]
async fn invite_links_work_once() {
    let server = TestServer::start().await;
    let admin = server.client();
    server.set_up(&admin).await;
    let (status, added) = server
        .call(
            &admin,
            "add_member",
            &[("name", "Citra"), ("email", "Citra@Example.com"), ("role", "agent"), ("onboarding", "invite_link")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let path = added["invite_path"].as_str().unwrap().to_owned();
    let token = path.rsplit('/').next().unwrap().to_owned();

    // Invited but not yet accepted: cannot log in with any password.
    let (status, _) = server.call(&server.client(), "login", &[("email", "citra@example.com"), ("password", "")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let invitee = server.client();
    let page = invitee.get(format!("{}{path}", server.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (_, info) = server.call(&invitee, "invite", &[("token", &token)]).await;
    assert_eq!(
        (info["email"].as_str(), info["workspace_name"].as_str()),
        (Some("citra@example.com"), Some("Toko Maju"))
    );
    let (_, body) = server.call(&invitee, "accept_invite", &[("token", &token), ("password", "short")]).await;
    assert_eq!(invalid_fields(&body), ["password"]);
    let (status, _) =
        server.call(&invitee, "accept_invite", &[("token", &token), ("password", "citra-password-1")]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = server.call(&invitee, "me", &[]).await;
    assert_eq!((me["email"].as_str(), me["must_change_password"].as_bool()), (Some("citra@example.com"), Some(false)));

    let (status, body) =
        server.call(&server.client(), "accept_invite", &[("token", &token), ("password", "another-password-1")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::NOT_FOUND, "invite_invalid"));
    let (status, body) = server.call(&server.client(), "invite", &[("token", "made-up")]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::NOT_FOUND, "invite_invalid"));
    server.log_in("citra@example.com", "citra-password-1").await;
    server.stop().await;
}

#[tokio::test]
async fn markup_and_sql_are_stored_verbatim_and_rendered_inert() {
    let server = TestServer::start().await;
    let admin = server.client();
    server.set_up(&admin).await;
    let sneaky = "<script>alert('x')</script>'); DROP TABLE users;--";
    let (status, body) = server
        .call(
            &admin,
            "add_member",
            &[("name", sneaky), ("email", "sneaky@example.com"), ("role", "agent"), ("onboarding", "invite_link")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, members) = server.call(&admin, "members", &[]).await;
    assert!(members.as_array().unwrap().iter().any(|m| m["name"] == sneaky), "{members}");

    let page = admin.get(format!("{}/settings/team", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<script>alert('x')</script>"), "the name must not become markup");
    assert!(page.contains("&lt;script&gt;"), "the name is shown, escaped");

    let too_long = "x".repeat(101);
    let (status, body) = server
        .call(
            &admin,
            "add_member",
            &[("name", &too_long), ("email", "long@example.com"), ("role", "agent"), ("onboarding", "invite_link")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid_fields(&body), ["name"]);
    let (status, body) = server
        .call(
            &admin,
            "add_member",
            &[("name", "Dup"), ("email", "SNEAKY@example.com"), ("role", "agent"), ("onboarding", "invite_link")],
        )
        .await;
    assert_eq!((status, invalid_fields(&body)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["email".to_owned()]));
    // A call that the browser marks as coming from another site is refused.
    let forged =
        admin.post(format!("{}/api/members", server.base)).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Malformed requests (a missing field, a wrong type) are refused with a 4xx, not a crash.
    let (status, _) = server.call(&admin, "set_role", &[("user_id", "not-a-number"), ("role", "admin")]).await;
    assert!(status.is_client_error(), "{status}");
    let (status, _) = server.call(&admin, "add_member", &[("name", "Only a name")]).await;
    assert!(status.is_client_error(), "{status}");
    let (_, members) = server.call(&admin, "members", &[]).await;
    assert_eq!(members.as_array().unwrap().len(), 2, "nothing was added by the bad requests");
    server.stop().await;
}

#[tokio::test]
async fn pages_are_compressed_for_browsers_that_ask() {
    let server = TestServer::start().await;
    // A client that leaves the answer as it came, to see how it came.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let response = client
        .get(format!("{}/setup", server.base))
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get(reqwest::header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), Some("gzip"));
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    server.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let client = server.client();
    let health = client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = client.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"database": "ok", "redis": "ok"}));
    server.stop().await;
}

#[tokio::test]
async fn system_status_shows_running_workers_to_admins_only() {
    let server = TestServer::start().await;
    let admin = server.client();
    server.set_up(&admin).await;
    let (_, status) = server.call(&admin, "system_status", &[]).await;
    assert_eq!((status["database"].as_bool(), status["redis"].as_bool()), (Some(true), Some(true)));
    assert_eq!(status["workers"], json!([]));

    let settings = Settings {
        redis_url: SecretString::from(balas_testkit::redis_url()),
        redis_prefix: server.bus.keys().prefix().to_owned(),
        ..Settings::default()
    };
    let worker = balas_workers::Worker::start(balas_domain::WorkerKind::Whatsapp, &settings).await.unwrap();
    let instance = worker.info().instance.clone();
    let (_, status) = server.call(&admin, "system_status", &[]).await;
    assert_eq!(status["workers"][0]["instance"], json!(instance), "{status}");
    assert_eq!(status["workers"][0]["kind"], "whatsapp");

    server.add_agent(&admin, "budi@example.com").await;
    let agent = server.log_in("budi@example.com", "initial-pass-1").await;
    let (status, body) = server.call(&agent, "system_status", &[]).await;
    assert_eq!((status, error_kind(&body)), (StatusCode::FORBIDDEN, "forbidden"));

    worker.serve(async {}).await.unwrap();
    let (_, status) = server.call(&admin, "system_status", &[]).await;
    assert_eq!(status["workers"], json!([]), "a stopped worker is gone");
    server.stop().await;
}
