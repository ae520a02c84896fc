//! The storage conformance suite: every behaviour of the store, on SQLite and on PostgreSQL.
//! Each case runs twice (`case::sqlite`, `case::postgres`) on a fresh database.

use balas_domain::{
    AuditAction, Email, Language, MemberStatus, PersonName, Role, Timestamp, UserId, WorkspaceId, WorkspaceName,
};
use balas_storage::{Audit, Conflict, NewInvite, NewMember, NewSession, Store, StoreError};

use balas_testkit::conformance;

conformance!(
    setup_happens_exactly_once,
    sessions_live_expire_and_revoke,
    members_roles_and_the_last_admin,
    invites_are_single_use,
    audit_log_is_scoped_and_newest_first,
    text_is_stored_verbatim,
    admins_demoting_each_other_at_once_leave_one_admin,
);

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

fn name(raw: &str) -> PersonName {
    PersonName::parse(raw).unwrap()
}

fn audit(workspace_id: WorkspaceId, actor: Option<UserId>, action: AuditAction, subject: &str) -> Audit<'_> {
    Audit { workspace_id, actor, action, subject, detail: "", ip: Some("127.0.0.1"), at: T0 }
}

async fn set_up(store: &Store) -> (WorkspaceId, UserId) {
    let (admin_email, admin_name) = (email("admin@example.com"), name("Ana Admin"));
    store
        .set_up(
            &WorkspaceName::parse("Toko Maju").unwrap(),
            &NewMember {
                email: &admin_email,
                name: &admin_name,
                role: Role::Admin,
                password_hash: Some("hash"),
                must_change_password: false,
            },
            Some("127.0.0.1"),
            T0,
        )
        .await
        .expect("set up")
}

async fn add_agent(
    store: &Store,
    ws: WorkspaceId,
    actor: UserId,
    address: &str,
    invite: Option<&NewInvite<'_>>,
) -> UserId {
    let (e, n) = (email(address), name("Budi Agent"));
    store
        .add_member(
            ws,
            &NewMember {
                email: &e,
                name: &n,
                role: Role::Agent,
                password_hash: if invite.is_some() { None } else { Some("agent-hash") },
                must_change_password: invite.is_none(),
            },
            invite,
            &audit(ws, Some(actor), AuditAction::MemberAdded, address),
        )
        .await
        .expect("add member")
}

async fn setup_happens_exactly_once(store: Store) {
    assert!(!store.is_set_up().await.unwrap());
    let (ws, admin) = set_up(&store).await;
    assert!(store.is_set_up().await.unwrap());

    let (e, n) = (email("other@example.com"), name("Other"));
    let again = store
        .set_up(
            &WorkspaceName::parse("Second").unwrap(),
            &NewMember {
                email: &e,
                name: &n,
                role: Role::Admin,
                password_hash: Some("h"),
                must_change_password: false,
            },
            None,
            T0,
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(Conflict::AlreadySetUp))), "{again:?}");
    // The failed second setup left nothing behind.
    assert!(store.login_record(&e).await.unwrap().is_none());

    let record = store.login_record(&email("admin@example.com")).await.unwrap().expect("admin can log in");
    assert_eq!((record.user_id, record.workspace_id), (admin, ws));
    assert_eq!(record.password_hash.as_deref(), Some("hash"));
}

async fn sessions_live_expire_and_revoke(store: Store) {
    let (ws, admin) = set_up(&store).await;
    let session = |hash: &'static str, expires_at: Timestamp| NewSession {
        token_hash: hash,
        user_id: admin,
        workspace_id: ws,
        created_at: T0,
        expires_at,
        user_agent: "test",
        ip: "127.0.0.1",
    };
    store.create_session(&session("live", T0.plus_millis(60_000))).await.unwrap();
    store.create_session(&session("other", T0.plus_millis(60_000))).await.unwrap();
    store.create_session(&session("third", T0.plus_millis(60_000))).await.unwrap();

    let me = store.session_user("live", T0).await.unwrap().expect("live session");
    assert_eq!((me.user_id, me.workspace_id, me.role), (admin, ws, Role::Admin));
    assert_eq!(
        (me.name.as_str(), me.email.as_str(), me.workspace_name.as_str()),
        ("Ana Admin", "admin@example.com", "Toko Maju")
    );
    assert_eq!(me.language, Language::En);
    assert!(!me.must_change_password);

    assert!(store.session_user("live", T0.plus_millis(60_000)).await.unwrap().is_none(), "expired");
    assert!(store.session_user("unknown", T0).await.unwrap().is_none());

    store.revoke_session("live", T0).await.unwrap();
    assert!(store.session_user("live", T0).await.unwrap().is_none(), "revoked");
    assert!(store.session_user("other", T0).await.unwrap().is_some(), "other sessions stay");

    assert_eq!(store.revoke_user_sessions(admin, Some("other"), T0).await.unwrap(), 1);
    assert!(store.session_user("other", T0).await.unwrap().is_some(), "kept session stays");
    assert!(store.session_user("third", T0).await.unwrap().is_none());

    store.set_language(admin, Language::Id).await.unwrap();
    assert_eq!(store.session_user("other", T0).await.unwrap().unwrap().language, Language::Id);
}

async fn members_roles_and_the_last_admin(store: Store) {
    let (ws, admin) = set_up(&store).await;
    let agent = add_agent(&store, ws, admin, "budi@example.com", None).await;

    let (dup_e, dup_n) = (email("budi@example.com"), name("Dup"));
    let dup = store
        .add_member(
            ws,
            &NewMember {
                email: &dup_e,
                name: &dup_n,
                role: Role::Agent,
                password_hash: Some("x"),
                must_change_password: false,
            },
            None,
            &audit(ws, Some(admin), AuditAction::MemberAdded, "dup"),
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(Conflict::EmailTaken))), "{dup:?}");

    let members = store.members(ws).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[0].role, Role::Admin, "admins first");
    let budi = members.iter().find(|m| m.user_id == agent).unwrap();
    assert_eq!((budi.role, budi.status), (Role::Agent, MemberStatus::MustChangePassword));

    store.set_password(agent, "new-hash", &audit(ws, Some(agent), AuditAction::PasswordChanged, "budi")).await.unwrap();
    assert_eq!(store.password_hash(agent).await.unwrap().as_deref(), Some("new-hash"));
    let budi = store.members(ws).await.unwrap().into_iter().find(|m| m.user_id == agent).unwrap();
    assert_eq!(budi.status, MemberStatus::Active);

    let last = store.set_role(ws, admin, Role::Agent, &audit(ws, Some(admin), AuditAction::RoleChanged, "ana")).await;
    assert!(matches!(last, Err(StoreError::Conflict(Conflict::LastAdmin))), "{last:?}");

    let old = store
        .set_role(ws, agent, Role::Admin, &audit(ws, Some(admin), AuditAction::RoleChanged, "budi"))
        .await
        .unwrap();
    assert_eq!(old, Role::Agent);
    // With two admins, one may step down.
    store.set_role(ws, admin, Role::Agent, &audit(ws, Some(agent), AuditAction::RoleChanged, "ana")).await.unwrap();

    let missing = store.set_role(ws, UserId(9_999), Role::Agent, &audit(ws, None, AuditAction::RoleChanged, "x")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    assert!(
        matches!(store.member_email(WorkspaceId(ws.0 + 1), agent).await, Err(StoreError::NotFound)),
        "scoped to the workspace"
    );
}

async fn invites_are_single_use(store: Store) {
    let (ws, admin) = set_up(&store).await;
    let invite = NewInvite { token_hash: "invite-hash", expires_at: T0.plus_millis(1_000) };
    let agent = add_agent(&store, ws, admin, "citra@example.com", Some(&invite)).await;

    let member = store.members(ws).await.unwrap().into_iter().find(|m| m.user_id == agent).unwrap();
    assert_eq!(member.status, MemberStatus::Invited);
    assert!(store.login_record(&email("citra@example.com")).await.unwrap().unwrap().password_hash.is_none());

    let found = store.invite("invite-hash", T0).await.unwrap().expect("valid invite");
    assert_eq!(
        (found.user_id, found.info.email.as_str(), found.info.workspace_name.as_str()),
        (agent, "citra@example.com", "Toko Maju")
    );
    assert!(store.invite("invite-hash", T0.plus_millis(1_000)).await.unwrap().is_none(), "expired");
    assert!(matches!(
        store.accept_invite("invite-hash", "h", None, T0.plus_millis(1_000)).await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(store.accept_invite("invite-hash", "chosen-hash", None, T0).await.unwrap(), (agent, ws));
    assert_eq!(store.password_hash(agent).await.unwrap().as_deref(), Some("chosen-hash"));
    assert!(
        matches!(store.accept_invite("invite-hash", "again", None, T0).await, Err(StoreError::NotFound)),
        "single use"
    );
    assert_eq!(
        store.password_hash(agent).await.unwrap().as_deref(),
        Some("chosen-hash"),
        "a reused link changes nothing"
    );
}

async fn audit_log_is_scoped_and_newest_first(store: Store) {
    let (ws, admin) = set_up(&store).await;
    add_agent(&store, ws, admin, "dewi@example.com", None).await;
    store.append_audit(&audit(ws, None, AuditAction::AccountLocked, "dewi@example.com")).await.unwrap();

    let log = store.audit_log(ws, 10).await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::AccountLocked, AuditAction::MemberAdded, AuditAction::WorkspaceCreated]);
    assert_eq!(log[1].actor.as_deref(), Some("Ana Admin"));
    assert_eq!(log[0].actor, None);
    assert_eq!(store.audit_log(ws, 1).await.unwrap().len(), 1);
    assert!(store.audit_log(WorkspaceId(ws.0 + 1), 10).await.unwrap().is_empty());
}

async fn admins_demoting_each_other_at_once_leave_one_admin(store: Store) {
    let (ws, ana) = set_up(&store).await;
    let budi = add_agent(&store, ws, ana, "budi@example.com", None).await;
    store.set_role(ws, budi, Role::Admin, &audit(ws, Some(ana), AuditAction::RoleChanged, "budi")).await.unwrap();
    let (by_budi, by_ana) = (
        audit(ws, Some(budi), AuditAction::RoleChanged, "ana"),
        audit(ws, Some(ana), AuditAction::RoleChanged, "budi"),
    );
    let (a, b) =
        tokio::join!(store.set_role(ws, ana, Role::Agent, &by_budi), store.set_role(ws, budi, Role::Agent, &by_ana),);
    assert_eq!([&a, &b].iter().filter(|r| r.is_ok()).count(), 1, "exactly one demotion wins: {a:?} {b:?}");
    let admins = store.members(ws).await.unwrap().into_iter().filter(|m| m.role == Role::Admin).count();
    assert_eq!(admins, 1);
}

async fn text_is_stored_verbatim(store: Store) {
    let (ws, admin) = set_up(&store).await;
    let sneaky = "Robert'); DROP TABLE users;-- <b>x</b> 😀";
    let (e, n) = (email("bobby@example.com"), name(sneaky));
    store
        .add_member(
            ws,
            &NewMember {
                email: &e,
                name: &n,
                role: Role::Agent,
                password_hash: Some("h"),
                must_change_password: false,
            },
            None,
            &audit(ws, Some(admin), AuditAction::MemberAdded, sneaky),
        )
        .await
        .unwrap();
    let members = store.members(ws).await.unwrap();
    assert!(members.iter().any(|m| m.name == sneaky));
    assert_eq!(store.audit_log(ws, 1).await.unwrap()[0].subject, sneaky);
}

/// A restarted server opens the store again: migrations run once more, change nothing, keep the data.
async fn reopen_keeps_data(url: &str) {
    let store = Store::open(url, 2).await.expect("open");
    set_up(&store).await;
    store.close().await;
    let again = Store::open(url, 2).await.expect("open again");
    assert!(again.is_set_up().await.unwrap());
    assert!(again.login_record(&email("admin@example.com")).await.unwrap().is_some());
}

#[tokio::test]
async fn reopen_keeps_data_sqlite() {
    let db = balas_testkit::sqlite();
    reopen_keeps_data(&db.url).await;
}

#[tokio::test]
async fn reopen_keeps_data_postgres() {
    let db = balas_testkit::postgres().await;
    reopen_keeps_data(&db.url).await;
}

/// The server and the workers start together on a new database: each opens the store, and all of
/// them find it migrated once.
async fn opening_together_migrates_once(url: &str) {
    let opened = futures::future::join_all((0..4).map(|_| Store::open(url, 2))).await;
    for store in opened {
        assert!(!store.expect("open while others open").is_set_up().await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opening_together_migrates_once_sqlite() {
    let db = balas_testkit::sqlite();
    opening_together_migrates_once(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opening_together_migrates_once_postgres() {
    let db = balas_testkit::postgres().await;
    opening_together_migrates_once(&db.url).await;
}

#[tokio::test]
async fn sqlite_creates_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("folder").join("balas.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), 1).await.expect("open");
    assert!(!store.is_set_up().await.unwrap());
    assert!(path.exists());
}

/// Commits leave SQLite's write-ahead log alone (no checkpoint on a writer's path); the store
/// copies the log into the database file in the background.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn sqlite_checkpoints_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("balas.db");
    let store = Store::open(&format!("sqlite://{}", path.display()), 2).await.expect("open");
    // Only a checkpoint writes to the database file in WAL mode: watch it for writes.
    let changes = rustix::fs::inotify::init(rustix::fs::inotify::CreateFlags::NONBLOCK).unwrap();
    rustix::fs::inotify::add_watch(&changes, &path, rustix::fs::inotify::WatchFlags::MODIFY).unwrap();
    set_up(&store).await;
    let log_bytes = std::fs::metadata(dir.path().join("balas.db-wal")).expect("the write-ahead log").len();
    assert!(log_bytes > 100_000, "the schema and the workspace are in the log: {log_bytes} bytes");
    // The database file gets the schema's pages once the log is copied into it.
    let watched = path.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let db_bytes = std::fs::metadata(&watched).unwrap().len();
            if db_bytes > 100_000 {
                return;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let left = rustix::event::Timespec::try_from(left).unwrap();
            let mut ready = [rustix::event::PollFd::new(&changes, rustix::event::PollFlags::IN)];
            let woken = rustix::event::poll(&mut ready, Some(&left)).unwrap();
            assert!(woken > 0, "the log was not copied into the database: {db_bytes} bytes");
            let _ = rustix::io::read(&changes, &mut [0u8; 4096]);
        }
    })
    .await
    .unwrap();
    assert!(store.is_set_up().await.unwrap());
}

#[tokio::test]
async fn unknown_database_urls_are_refused() {
    assert!(matches!(Store::open("mysql://localhost/x", 1).await, Err(StoreError::UnsupportedUrl)));
}
