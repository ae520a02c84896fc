//! The account rules: first-run setup, login with throttling, sessions, passwords, the team and the
//! audit log. Every function that acts for a user takes the [`Caller`] and checks its role here, on
//! the server, whatever the UI showed.

use balas_bus::{Attempt, LoginSubject, Throttle};
use balas_domain::{
    AddedMember, AppError, AuditAction, AuditEntry, Email, Field, FieldError, InviteInfo, Issue, Language, Me,
    Onboarding, Password, PersonName, Role, SystemStatus, TeamMember, UserId, WorkspaceName,
};
use balas_storage::{Audit, NewInvite, NewMember, NewSession};

use crate::secrets::{hash_password, token, token_hash, verify_password};
use crate::{AppState, from_store, internal, now};

/// Facts about the HTTP request an action came with.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: String,
    pub user_agent: String,
}

/// A logged-in user and the session they used.
#[derive(Debug, Clone)]
pub struct Caller {
    pub me: Me,
    token_hash: String,
}

impl Caller {
    /// The member an API key acts as (it has no session of its own).
    pub(crate) fn for_api_key(me: Me) -> Self {
        Self { me, token_hash: String::new() }
    }

    /// Any member who has replaced an initial password an admin gave them.
    pub fn require_active(&self) -> Result<(), AppError> {
        if self.me.must_change_password { Err(AppError::PasswordChangeRequired) } else { Ok(()) }
    }

    /// Admins only, and only once they have replaced an initial password an admin gave them.
    pub fn require_admin(&self) -> Result<(), AppError> {
        if !self.me.is_admin() {
            Err(AppError::Forbidden)
        } else if self.me.must_change_password {
            Err(AppError::PasswordChangeRequired)
        } else {
            Ok(())
        }
    }
}

/// A new login: the session token to put in the cookie, and who it is for. (No `Debug`: it holds
/// a secret.)
#[derive(Clone)]
pub struct Login {
    pub token: String,
    pub me: Me,
}

/// Collects every field problem of a form, so that the user sees them all at once.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, AppError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(AppError::Invalid { errors: self.0 }),
        }
    }
}

fn hash_failed(error: String) -> AppError {
    internal(format!("password hashing failed: {error}"))
}

async fn start_session(
    state: &AppState,
    meta: &RequestMeta,
    user_id: UserId,
    workspace_id: balas_domain::WorkspaceId,
) -> Result<Login, AppError> {
    let token = token();
    let hash = token_hash(&token);
    let created_at = now();
    let user_agent: String = meta.user_agent.chars().take(300).collect();
    state
        .store
        .create_session(&NewSession {
            token_hash: &hash,
            user_id,
            workspace_id,
            created_at,
            expires_at: created_at.plus_millis(i64::from(state.settings.session_hours) * 3_600_000),
            user_agent: &user_agent,
            ip: &meta.ip,
        })
        .await
        .map_err(from_store)?;
    let me = state
        .store
        .session_user(&hash, created_at)
        .await
        .map_err(from_store)?
        .ok_or_else(|| internal("new session not found"))?;
    Ok(Login { token, me })
}

/// Whether the first-run setup still has to be done.
pub async fn needs_setup(state: &AppState) -> Result<bool, AppError> {
    Ok(!state.store.is_set_up().await.map_err(from_store)?)
}

/// The first-run setup form. (No `Debug`: it holds a password.)
#[derive(Clone)]
pub struct SetupForm {
    pub workspace_name: String,
    pub name: String,
    pub email: String,
    pub password: String,
}

/// Creates the workspace and its first admin, and logs the admin in.
pub async fn set_up(state: &AppState, meta: &RequestMeta, form: SetupForm) -> Result<Login, AppError> {
    if !needs_setup(state).await? {
        return Err(AppError::AlreadySetUp);
    }
    let mut problems = Problems::default();
    let workspace = problems.check(WorkspaceName::parse(&form.workspace_name));
    let name = problems.check(PersonName::parse(&form.name));
    let email = problems.check(Email::parse(&form.email));
    let password = problems.check(Password::parse_new(Field::Password, &form.password));
    let (workspace, name, email, password) =
        problems.finish(workspace.zip(name).zip(email).zip(password).map(|(((w, n), e), p)| (w, n, e, p)))?;
    let hash = hash_password(password.expose().to_owned()).await.map_err(hash_failed)?;
    let admin = NewMember {
        email: &email,
        name: &name,
        role: Role::Admin,
        password_hash: Some(&hash),
        must_change_password: false,
    };
    let (workspace_id, user_id) =
        state.store.set_up(&workspace, &admin, Some(&meta.ip), now()).await.map_err(from_store)?;
    tracing::info!(%workspace_id, %user_id, "workspace set up");
    start_session(state, meta, user_id, workspace_id).await
}

/// Logs in with email and password. Attempts are counted per account and per address; enough
/// failures slow further attempts down, then lock them out for a while.
pub async fn log_in(state: &AppState, meta: &RequestMeta, email: &str, password: &str) -> Result<Login, AppError> {
    if needs_setup(state).await? {
        return Err(AppError::NotSetUp);
    }
    // An address that is not an email cannot belong to an account: same answer as a wrong password,
    // but still counted against the address.
    let email = Email::parse(email).ok();
    let record = match &email {
        Some(email) => state.store.login_record(email).await.map_err(from_store)?,
        None => None,
    };
    let stored = record.as_ref().and_then(|r| r.password_hash.clone());
    let workspace_id = record.as_ref().map(|r| r.workspace_id);
    match record {
        Some(record) if check_password(state, meta, email.as_ref(), workspace_id, password, stored).await? => {
            start_session(state, meta, record.user_id, record.workspace_id).await
        }
        _ => Err(AppError::BadCredentials),
    }
}

/// Checks a password under the throttle: refuses while the account or the address is slowed or
/// locked, counts the attempt before the (slow) check so that parallel guesses cannot slip
/// through, takes it back when the password was right, and audits a lock.
async fn check_password(
    state: &AppState,
    meta: &RequestMeta,
    email: Option<&Email>,
    workspace_id: Option<balas_domain::WorkspaceId>,
    password: &str,
    stored: Option<String>,
) -> Result<bool, AppError> {
    let mut subjects = vec![LoginSubject::Address(meta.ip.clone())];
    subjects.extend(email.cloned().map(LoginSubject::Account));
    let at = now();
    let locked = match state.bus.begin_password_attempt(&subjects, at).await.map_err(internal)? {
        Attempt::Refused(Throttle::Slowed { retry_after_ms }) => return Err(too_many(retry_after_ms, false)),
        Attempt::Refused(Throttle::Locked { retry_after_ms }) => return Err(too_many(retry_after_ms, true)),
        Attempt::Counted { locked } => locked,
    };
    let right = !password.is_empty() && password.len() <= 1024 && verify_password(password.to_owned(), stored).await;
    if right {
        state.bus.password_attempt_succeeded(&subjects).await.map_err(internal)?;
        return Ok(true);
    }
    for subject in locked {
        if let (LoginSubject::Account(email), Some(workspace_id)) = (&subject, workspace_id) {
            tracing::warn!(%workspace_id, "account locked after repeated failed password checks");
            let audit = Audit {
                workspace_id,
                actor: None,
                action: AuditAction::AccountLocked,
                subject: email.as_str(),
                detail: "",
                ip: Some(&meta.ip),
                at,
            };
            state.store.append_audit(&audit).await.map_err(from_store)?;
        }
    }
    Ok(false)
}

fn too_many(retry_after_ms: i64, locked: bool) -> AppError {
    let retry_after_secs = u64::try_from(retry_after_ms.max(0)).unwrap_or(0).div_ceil(1000).max(1);
    AppError::TooManyAttempts { retry_after_secs, locked }
}

/// The user behind a session token, if the session is live.
pub async fn caller(state: &AppState, session_token: Option<&str>) -> Result<Option<Caller>, AppError> {
    let Some(token) = session_token.filter(|t| !t.is_empty() && t.len() <= 128) else { return Ok(None) };
    let hash = token_hash(token);
    let me = state.store.session_user(&hash, now()).await.map_err(from_store)?;
    Ok(me.map(|me| Caller { me, token_hash: hash }))
}

/// A password hash as accounts store it (for tools and benchmarks that make accounts directly).
pub async fn hash_for_tools(password: &str) -> Result<String, AppError> {
    hash_password(password.to_owned()).await.map_err(internal)
}

/// What the database keeps of a session token (for tools and tests that make sessions).
pub fn session_token_hash(token: &str) -> String {
    token_hash(token)
}

/// Like [`caller`], but a missing or ended session is an error.
pub async fn require_caller(state: &AppState, session_token: Option<&str>) -> Result<Caller, AppError> {
    caller(state, session_token).await?.ok_or(AppError::Unauthenticated)
}

/// Ends the caller's session.
pub async fn log_out(state: &AppState, caller: &Caller) -> Result<(), AppError> {
    state.store.revoke_session(&caller.token_hash, now()).await.map_err(from_store)
}

/// Ends every session of the caller, on every device (this one too).
pub async fn log_out_everywhere(state: &AppState, caller: &Caller) -> Result<u64, AppError> {
    state.store.revoke_user_sessions(caller.me.user_id, None, now()).await.map_err(from_store)
}

/// Changes the caller's own password. Every other session of theirs ends.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    current: &str,
    new: &str,
) -> Result<(), AppError> {
    let mut problems = Problems::default();
    if current.is_empty() {
        problems.0.push(FieldError::new(Field::CurrentPassword, Issue::Required));
    }
    let new = problems.check(Password::parse_new(Field::NewPassword, new));
    if new.as_ref().is_some_and(|n| n.expose() == current) {
        problems.0.push(FieldError::new(Field::NewPassword, Issue::Unchanged));
    }
    let new = problems.finish(new)?;
    let stored = state.store.password_hash(caller.me.user_id).await.map_err(from_store)?;
    // Throttled like login: a stolen session must not be a way to guess the password.
    let email = Email::parse(&caller.me.email).map_err(internal)?;
    if !check_password(state, meta, Some(&email), Some(caller.me.workspace_id), current, stored).await? {
        return Err(AppError::BadCredentials);
    }
    let hash = hash_password(new.expose().to_owned()).await.map_err(hash_failed)?;
    let at = now();
    state
        .store
        .set_password(
            caller.me.user_id,
            &hash,
            &Audit {
                workspace_id: caller.me.workspace_id,
                actor: Some(caller.me.user_id),
                action: AuditAction::PasswordChanged,
                subject: &caller.me.email,
                detail: "",
                ip: Some(&meta.ip),
                at,
            },
        )
        .await
        .map_err(from_store)?;
    state.store.revoke_user_sessions(caller.me.user_id, Some(&caller.token_hash), at).await.map_err(from_store)?;
    Ok(())
}

/// Remembers the caller's language.
pub async fn set_language(state: &AppState, caller: &Caller, language: &str) -> Result<Language, AppError> {
    let language = Language::parse(language)?;
    state.store.set_language(caller.me.user_id, language).await.map_err(from_store)?;
    Ok(language)
}

/// The team page (admins only).
pub async fn members(state: &AppState, caller: &Caller) -> Result<Vec<TeamMember>, AppError> {
    caller.require_admin()?;
    state.store.members(caller.me.workspace_id).await.map_err(from_store)
}

/// The add-member form. (No `Debug`: it may hold a password.)
#[derive(Clone)]
pub struct MemberForm {
    pub name: String,
    pub email: String,
    pub role: String,
    pub onboarding: Onboarding,
    /// Required with [`Onboarding::InitialPassword`].
    pub initial_password: String,
}

/// Adds a member (admins only), with an initial password they must change or a one-time invite link.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    form: MemberForm,
) -> Result<AddedMember, AppError> {
    caller.require_admin()?;
    let mut problems = Problems::default();
    let name = problems.check(PersonName::parse(&form.name));
    let email = problems.check(Email::parse(&form.email));
    let role = problems.check(Role::parse(&form.role));
    let password = match form.onboarding {
        Onboarding::InitialPassword => {
            problems.check(Password::parse_new(Field::Password, &form.initial_password)).map(Some)
        }
        Onboarding::InviteLink => Some(None),
    };
    let (name, email, role, password) =
        problems.finish(name.zip(email).zip(role).zip(password).map(|(((n, e), r), p)| (n, e, r, p)))?;
    let hash = match password {
        Some(password) => Some(hash_password(password.expose().to_owned()).await.map_err(hash_failed)?),
        None => None,
    };
    let invite_token = hash.is_none().then(token);
    let invite_hash = invite_token.as_deref().map(token_hash);
    let at = now();
    let invite = invite_hash.as_deref().map(|token_hash| NewInvite {
        token_hash,
        expires_at: at.plus_millis(i64::from(state.settings.invite_hours) * 3_600_000),
    });
    let detail = format!("role: {}", role.as_str());
    let user_id = state
        .store
        .add_member(
            caller.me.workspace_id,
            &NewMember {
                email: &email,
                name: &name,
                role,
                password_hash: hash.as_deref(),
                must_change_password: hash.is_some(),
            },
            invite.as_ref(),
            &Audit {
                workspace_id: caller.me.workspace_id,
                actor: Some(caller.me.user_id),
                action: if invite.is_some() { AuditAction::MemberInvited } else { AuditAction::MemberAdded },
                subject: email.as_str(),
                detail: &detail,
                ip: Some(&meta.ip),
                at,
            },
        )
        .await
        .map_err(from_store)?;
    let invite_path =
        invite_token.map(|token| format!("{}/invite/{token}", state.settings.public_url.trim_end_matches('/')));
    Ok(AddedMember { user_id, invite_path })
}

/// Changes a member's role (admins only). The last admin cannot be demoted.
pub async fn set_role(
    state: &AppState,
    caller: &Caller,
    meta: &RequestMeta,
    user_id: UserId,
    role: &str,
) -> Result<(), AppError> {
    caller.require_admin()?;
    let role = Role::parse(role)?;
    let email = state.store.member_email(caller.me.workspace_id, user_id).await.map_err(from_store)?;
    let at = now();
    let detail = format!("→ {}", role.as_str());
    state
        .store
        .set_role(
            caller.me.workspace_id,
            user_id,
            role,
            &Audit {
                workspace_id: caller.me.workspace_id,
                actor: Some(caller.me.user_id),
                action: AuditAction::RoleChanged,
                subject: &email,
                detail: &detail,
                ip: Some(&meta.ip),
                at,
            },
        )
        .await
        .map_err(from_store)?;
    Ok(())
}

/// The newest audit entries (admins only).
pub async fn audit_log(state: &AppState, caller: &Caller) -> Result<Vec<AuditEntry>, AppError> {
    caller.require_admin()?;
    state.store.audit_log(caller.me.workspace_id, 200).await.map_err(from_store)
}

/// The System page (admins only): database, Redis and the workers that are running.
pub async fn system_status(state: &AppState, caller: &Caller) -> Result<SystemStatus, AppError> {
    caller.require_admin()?;
    let (database, redis) = crate::health(state).await;
    let checked_at = now();
    let workers = if redis { state.bus.live_workers(checked_at).await.map_err(internal)? } else { Vec::new() };
    Ok(SystemStatus { database, redis, workers, checked_at })
}

/// What an invite link offers; an unknown, used or expired link is [`AppError::InviteInvalid`].
pub async fn invite(state: &AppState, invite_token: &str) -> Result<InviteInfo, AppError> {
    let record = state.store.invite(&token_hash(invite_token), now()).await.map_err(from_store)?;
    record.map(|r| r.info).ok_or(AppError::InviteInvalid)
}

/// Uses an invite link: sets the member's password and logs them in.
pub async fn accept_invite(
    state: &AppState,
    meta: &RequestMeta,
    invite_token: &str,
    password: &str,
) -> Result<Login, AppError> {
    let password = Password::parse_new(Field::Password, password)?;
    // Check first, so a bad link is reported before the slow hashing.
    invite(state, invite_token).await?;
    let hash = hash_password(password.expose().to_owned()).await.map_err(hash_failed)?;
    let (user_id, workspace_id) =
        state.store.accept_invite(&token_hash(invite_token), &hash, Some(&meta.ip), now()).await.map_err(
            |e| match e {
                balas_storage::StoreError::NotFound => AppError::InviteInvalid,
                other => from_store(other),
            },
        )?;
    start_session(state, meta, user_id, workspace_id).await
}
