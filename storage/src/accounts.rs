//! Workspaces, users, memberships, login sessions, invites and the audit log.

use balas_domain::{
    AuditAction, AuditEntry, Email, InviteInfo, Language, Me, MemberStatus, PersonName, Role, TeamMember, Timestamp,
    UserId, WorkspaceId, WorkspaceName,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Conflict, Store, StoreError, StoreResult, on_unique};

/// A login session to store. Only a hash of the token is kept, so a copy of the database does not
/// let anyone log in.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub user_agent: &'a str,
    pub ip: &'a str,
}

/// What login needs to check a password.
#[derive(Debug, Clone)]
pub struct LoginRecord {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    /// `None` while an invite has not been accepted.
    pub password_hash: Option<String>,
}

/// A user to add to a workspace.
#[derive(Debug, Clone)]
pub struct NewMember<'a> {
    pub email: &'a Email,
    pub name: &'a PersonName,
    pub role: Role,
    /// `None` when the member will choose a password through an invite link.
    pub password_hash: Option<&'a str>,
    pub must_change_password: bool,
}

/// A one-time invite link to store with a new member.
#[derive(Debug, Clone)]
pub struct NewInvite<'a> {
    pub token_hash: &'a str,
    pub expires_at: Timestamp,
}

/// Who did what, for the audit log.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub workspace_id: WorkspaceId,
    pub actor: Option<UserId>,
    pub action: AuditAction,
    pub subject: &'a str,
    pub detail: &'a str,
    pub ip: Option<&'a str>,
    pub at: Timestamp,
}

/// A valid invite, found by its token.
#[derive(Debug, Clone)]
pub struct InviteRecord {
    pub user_id: UserId,
    pub workspace_id: WorkspaceId,
    pub info: InviteInfo,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn role_of(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).map_err(|_| corrupt("membership role"))
}

async fn insert_audit<'e>(executor: impl sqlx::Executor<'e, Database = Any>, audit: &Audit<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (workspace_id, actor_user_id, action, subject, detail, ip, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(audit.workspace_id.0)
    .bind(audit.actor.map(|id| id.0))
    .bind(audit.action.as_str())
    .bind(audit.subject)
    .bind(audit.detail)
    .bind(audit.ip)
    .bind(audit.at.0)
    .execute(executor)
    .await?;
    Ok(())
}

async fn insert_member(
    tx: &mut Transaction<'_, Any>,
    workspace_id: WorkspaceId,
    member: &NewMember<'_>,
    now: Timestamp,
) -> StoreResult<UserId> {
    let user_id: i64 = sqlx::query_scalar(
        "INSERT INTO users (email, name, password_hash, must_change_password, language, created_at) \
         VALUES ($1, $2, $3, $4, 'en', $5) RETURNING id",
    )
    .bind(member.email.as_str())
    .bind(member.name.as_str())
    .bind(member.password_hash)
    .bind(i64::from(member.must_change_password))
    .bind(now.0)
    .fetch_one(&mut **tx)
    .await
    .map_err(on_unique(Conflict::EmailTaken))?;
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id.0)
        .bind(user_id)
        .bind(member.role.as_str())
        .bind(now.0)
        .execute(&mut **tx)
        .await?;
    Ok(UserId(user_id))
}

async fn insert_workspace(
    tx: &mut Transaction<'_, Any>,
    workspace: &WorkspaceName,
    admin: &NewMember<'_>,
    ip: Option<&str>,
    now: Timestamp,
) -> StoreResult<(WorkspaceId, UserId)> {
    let workspace_id: i64 =
        sqlx::query_scalar("INSERT INTO workspaces (name, created_at) VALUES ($1, $2) RETURNING id")
            .bind(workspace.as_str())
            .bind(now.0)
            .fetch_one(&mut **tx)
            .await?;
    let workspace_id = WorkspaceId(workspace_id);
    let user_id = insert_member(tx, workspace_id, admin, now).await?;
    insert_audit(
        &mut **tx,
        &Audit {
            workspace_id,
            actor: Some(user_id),
            action: AuditAction::WorkspaceCreated,
            subject: workspace.as_str(),
            detail: admin.email.as_str(),
            ip,
            at: now,
        },
    )
    .await?;
    Ok((workspace_id, user_id))
}

impl Store {
    /// Whether the first-run setup has been done.
    pub async fn is_set_up(&self) -> StoreResult<bool> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM installation").fetch_one(&self.pool).await?;
        Ok(count > 0)
    }

    /// The first-run setup: creates the workspace and its first admin. Happens at most once; a second
    /// call fails with [`Conflict::AlreadySetUp`] and changes nothing.
    pub async fn set_up(
        &self,
        workspace: &WorkspaceName,
        admin: &NewMember<'_>,
        ip: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<(WorkspaceId, UserId)> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query("INSERT INTO installation (id, created_at) VALUES (1, $1)")
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(on_unique(Conflict::AlreadySetUp))?;
        let (workspace_id, user_id) = insert_workspace(&mut tx, workspace, admin, ip, now).await?;
        tx.commit().await?;
        Ok((workspace_id, user_id))
    }

    /// Another workspace with its first admin, for an installation that hosts several businesses.
    pub async fn create_workspace(
        &self,
        workspace: &WorkspaceName,
        admin: &NewMember<'_>,
        now: Timestamp,
    ) -> StoreResult<(WorkspaceId, UserId)> {
        let (_turn, mut tx) = self.begin_write().await?;
        let created = insert_workspace(&mut tx, workspace, admin, None, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The account behind an email address, for login. A user in several workspaces logs into the
    /// one they joined first.
    pub async fn login_record(&self, email: &Email) -> StoreResult<Option<LoginRecord>> {
        let row = sqlx::query(
            "SELECT u.id, m.workspace_id, u.password_hash FROM users u \
             JOIN memberships m ON m.user_id = u.id \
             WHERE u.email = $1 ORDER BY m.created_at, m.workspace_id LIMIT 1",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(LoginRecord {
                user_id: UserId(row.try_get(0)?),
                workspace_id: WorkspaceId(row.try_get(1)?),
                password_hash: row.try_get(2)?,
            })
        })
        .transpose()
    }

    pub async fn create_session(&self, session: &NewSession<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_sessions (token_hash, user_id, workspace_id, created_at, expires_at, user_agent, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(session.token_hash)
        .bind(session.user_id.0)
        .bind(session.workspace_id.0)
        .bind(session.created_at.0)
        .bind(session.expires_at.0)
        .bind(session.user_agent)
        .bind(session.ip)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user behind a live session: not revoked, not expired, and still a member of the workspace.
    pub async fn session_user(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Me>> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.email, m.role, u.language, w.id, w.name, u.must_change_password \
             FROM login_sessions s \
             JOIN users u ON u.id = s.user_id \
             JOIN memberships m ON m.user_id = s.user_id AND m.workspace_id = s.workspace_id \
             JOIN workspaces w ON w.id = s.workspace_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| me_from_row(&row)).transpose()
    }

    /// Ends one session (logout).
    pub async fn revoke_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE login_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash)
            .bind(now.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of a user but `keep` (after a password change, the session that changed it
    /// stays). Returns how many were ended.
    pub async fn revoke_user_sessions(&self, user_id: UserId, keep: Option<&str>, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE login_sessions SET revoked_at = $2 \
             WHERE user_id = $1 AND revoked_at IS NULL AND token_hash <> $3",
        )
        .bind(user_id.0)
        .bind(now.0)
        .bind(keep.unwrap_or(""))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Adds a member to a workspace (and their invite, when they will choose their own password).
    pub async fn add_member(
        &self,
        workspace_id: WorkspaceId,
        member: &NewMember<'_>,
        invite: Option<&NewInvite<'_>>,
        audit: &Audit<'_>,
    ) -> StoreResult<UserId> {
        let (_turn, mut tx) = self.begin_write().await?;
        let user_id = insert_member(&mut tx, workspace_id, member, audit.at).await?;
        if let Some(invite) = invite {
            sqlx::query(
                "INSERT INTO invites (token_hash, workspace_id, user_id, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(invite.token_hash)
            .bind(workspace_id.0)
            .bind(user_id.0)
            .bind(audit.actor.map(|id| id.0))
            .bind(audit.at.0)
            .bind(invite.expires_at.0)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    /// The members of a workspace, admins first, then by name.
    pub async fn members(&self, workspace_id: WorkspaceId) -> StoreResult<Vec<TeamMember>> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, u.email, m.role, u.password_hash IS NULL, u.must_change_password, m.created_at \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.workspace_id = $1 ORDER BY m.role, u.name, u.id",
        )
        .bind(workspace_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let invited: bool = flag(row, 4)?;
                let must_change: bool = flag(row, 5)?;
                Ok(TeamMember {
                    user_id: UserId(row.try_get(0)?),
                    name: row.try_get(1)?,
                    email: row.try_get(2)?,
                    role: role_of(&row.try_get::<String, _>(3)?)?,
                    status: if invited {
                        MemberStatus::Invited
                    } else if must_change {
                        MemberStatus::MustChangePassword
                    } else {
                        MemberStatus::Active
                    },
                    joined_at: Timestamp(row.try_get(6)?),
                })
            })
            .collect()
    }

    /// Changes a member's role. Refuses to demote the workspace's last admin. Returns the old role.
    pub async fn set_role(
        &self,
        workspace_id: WorkspaceId,
        user_id: UserId,
        role: Role,
        audit: &Audit<'_>,
    ) -> StoreResult<Role> {
        let (_turn, mut tx) = self.begin_write().await?;
        // Lock the workspace row first: role changes in one workspace then happen one at a time on
        // PostgreSQL too, so two admins demoting each other at once cannot both succeed.
        sqlx::query("UPDATE workspaces SET name = name WHERE id = $1").bind(workspace_id.0).execute(&mut *tx).await?;
        let old: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
                .bind(workspace_id.0)
                .bind(user_id.0)
                .fetch_optional(&mut *tx)
                .await?;
        let old = role_of(&old.ok_or(StoreError::NotFound)?)?;
        let done = sqlx::query(
            "UPDATE memberships SET role = $3 WHERE workspace_id = $1 AND user_id = $2 AND ($3 = 'admin' OR \
             (SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'admin' AND user_id <> $2) > 0)",
        )
        .bind(workspace_id.0)
        .bind(user_id.0)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(Conflict::LastAdmin));
        }
        if old != role {
            insert_audit(&mut *tx, audit).await?;
        }
        tx.commit().await?;
        Ok(old)
    }

    /// A member's email, checked to belong to the workspace.
    pub async fn member_email(&self, workspace_id: WorkspaceId, user_id: UserId) -> StoreResult<String> {
        sqlx::query_scalar(
            "SELECT u.email FROM users u JOIN memberships m ON m.user_id = u.id \
             WHERE m.workspace_id = $1 AND u.id = $2",
        )
        .bind(workspace_id.0)
        .bind(user_id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    pub async fn password_hash(&self, user_id: UserId) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Sets a user's own new password (which clears "must change password").
    pub async fn set_password(&self, user_id: UserId, password_hash: &str, audit: &Audit<'_>) -> StoreResult<()> {
        let (_turn, mut tx) = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $2, must_change_password = 0 WHERE id = $1")
            .bind(user_id.0)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut *tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_language(&self, user_id: UserId, language: Language) -> StoreResult<()> {
        sqlx::query("UPDATE users SET language = $2 WHERE id = $1")
            .bind(user_id.0)
            .bind(language.code())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A usable invite (not used, not expired).
    pub async fn invite(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<InviteRecord>> {
        let row = sqlx::query(
            "SELECT i.user_id, i.workspace_id, w.name, u.name, u.email FROM invites i \
             JOIN users u ON u.id = i.user_id JOIN workspaces w ON w.id = i.workspace_id \
             WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(InviteRecord {
                user_id: UserId(row.try_get(0)?),
                workspace_id: WorkspaceId(row.try_get(1)?),
                info: InviteInfo { workspace_name: row.try_get(2)?, name: row.try_get(3)?, email: row.try_get(4)? },
            })
        })
        .transpose()
    }

    /// Uses an invite once: sets the member's password. A used or expired invite is `NotFound`.
    pub async fn accept_invite(
        &self,
        token_hash: &str,
        password_hash: &str,
        ip: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<(UserId, WorkspaceId)> {
        let (_turn, mut tx) = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE invites SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING user_id, workspace_id",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let user_id = UserId(row.try_get(0)?);
        let workspace_id = WorkspaceId(row.try_get(1)?);
        let email: String = sqlx::query_scalar(
            "UPDATE users SET password_hash = $2, must_change_password = 0 WHERE id = $1 RETURNING email",
        )
        .bind(user_id.0)
        .bind(password_hash)
        .fetch_one(&mut *tx)
        .await?;
        insert_audit(
            &mut *tx,
            &Audit {
                workspace_id,
                actor: Some(user_id),
                action: AuditAction::InviteAccepted,
                subject: &email,
                detail: "",
                ip,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok((user_id, workspace_id))
    }

    /// Writes one audit entry on its own (for events that change nothing else, such as a lockout).
    pub async fn append_audit(&self, audit: &Audit<'_>) -> StoreResult<()> {
        insert_audit(&self.pool, audit).await
    }

    /// The newest audit entries of a workspace first.
    pub async fn audit_log(&self, workspace_id: WorkspaceId, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT a.created_at, u.name, a.action, a.subject, a.detail FROM audit_log a \
             LEFT JOIN users u ON u.id = a.actor_user_id \
             WHERE a.workspace_id = $1 ORDER BY a.id DESC LIMIT $2",
        )
        .bind(workspace_id.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let action: String = row.try_get(2)?;
                Ok(AuditEntry {
                    at: Timestamp(row.try_get(0)?),
                    actor: row.try_get(1)?,
                    action: AuditAction::parse(&action).ok_or_else(|| corrupt("audit action"))?,
                    subject: row.try_get(3)?,
                    detail: row.try_get(4)?,
                })
            })
            .collect()
    }
}

/// Reads a 0/1 flag. (Both databases return 64-bit integers for our flags and `IS NULL` tests; the
/// `Any` driver does not turn those into `bool` by itself.)
fn flag(row: &AnyRow, index: usize) -> StoreResult<bool> {
    match row.try_get::<i64, _>(index) {
        Ok(value) => Ok(value != 0),
        Err(_) => Ok(row.try_get::<bool, _>(index)?),
    }
}

fn me_from_row(row: &AnyRow) -> StoreResult<Me> {
    me_from_columns(row, 0)
}

/// A member from eight columns starting at `at`: user id, name, email, role, language, workspace
/// id, workspace name, must change password.
pub(crate) fn me_from_columns(row: &AnyRow, at: usize) -> StoreResult<Me> {
    Ok(Me {
        user_id: UserId(row.try_get(at)?),
        name: row.try_get(at + 1)?,
        email: row.try_get(at + 2)?,
        role: role_of(&row.try_get::<String, _>(at + 3)?)?,
        language: Language::parse(&row.try_get::<String, _>(at + 4)?).unwrap_or_default(),
        workspace_id: WorkspaceId(row.try_get(at + 5)?),
        workspace_name: row.try_get(at + 6)?,
        must_change_password: flag(row, at + 7)?,
    })
}
