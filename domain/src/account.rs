use serde::{Deserialize, Serialize};

use crate::{Field, FieldError, Issue, Timestamp, UserId, WorkspaceId};

/// What a member of a workspace may do. Admins manage the team, channels and settings; agents work
/// the inbox and the CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw.trim())
            .ok_or(FieldError::new(Field::Role, Issue::NotAllowed))
    }
}

/// A language the UI speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    En,
    Id,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Id];

    /// The BCP 47 code, as used in `<html lang>` and in the locale files.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Id => "id",
        }
    }

    /// The language's own name for itself, as shown in a language switch.
    pub fn endonym(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Id => "Bahasa Indonesia",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|lang| lang.code() == raw.trim())
            .ok_or(FieldError::new(Field::Locale, Issue::NotAllowed))
    }
}

/// The logged-in user as the UI sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub language: Language,
    pub workspace_id: WorkspaceId,
    pub workspace_name: String,
    pub must_change_password: bool,
}

impl Me {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Where a member's account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Can log in.
    Active,
    /// Was given an initial password and must choose their own at the next login.
    MustChangePassword,
    /// Was sent an invite link and has not used it yet.
    Invited,
}

/// A row of the team page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamMember {
    pub user_id: UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub status: MemberStatus,
    pub joined_at: Timestamp,
}

/// How an admin gives a new member access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Onboarding {
    /// The admin sets an initial password, which the member must change at the first login.
    InitialPassword,
    /// Balas makes a one-time link that lets the member choose a password.
    InviteLink,
}

/// The result of adding a member: the one-time invite path when one was made (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedMember {
    pub user_id: UserId,
    pub invite_path: Option<String>,
}

/// What an invite link offers, shown on the page that accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub workspace_name: String,
    pub name: String,
    pub email: String,
}

/// Things that go to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    WorkspaceCreated,
    MemberAdded,
    MemberInvited,
    InviteAccepted,
    RoleChanged,
    PasswordChanged,
    AccountLocked,
    ChannelCreated,
    CannedResponseCreated,
    CannedResponseDeleted,
    ReadReceiptsChanged,
    /// An admin asked for a real number to be linked again.
    ChannelRelinked,
    /// A contact stopped broadcasts (by a keyword, or an agent for them).
    ContactOptedOut,
    /// A contact takes broadcasts again.
    ContactOptedIn,
    ContactEdited,
    ContactDeleted,
    LabelCreated,
    LabelDeleted,
    AttributeCreated,
    AttributeChanged,
    AttributeDeleted,
    ContactsMerged,
    StopKeywordsChanged,
    BroadcastCreated,
    BroadcastPaused,
    BroadcastResumed,
    BroadcastCancelled,
    SendingRulesChanged,
    ApiKeyCreated,
    ApiKeyRevoked,
    WebhookCreated,
    WebhookDeleted,
    AiSettingsChanged,
    AiProfileChanged,
    AiEnabled,
    AiDisabled,
}

impl AuditAction {
    pub const ALL: [AuditAction; 36] = [
        AuditAction::WorkspaceCreated,
        AuditAction::MemberAdded,
        AuditAction::MemberInvited,
        AuditAction::InviteAccepted,
        AuditAction::RoleChanged,
        AuditAction::PasswordChanged,
        AuditAction::AccountLocked,
        AuditAction::ChannelCreated,
        AuditAction::CannedResponseCreated,
        AuditAction::CannedResponseDeleted,
        AuditAction::ReadReceiptsChanged,
        AuditAction::ChannelRelinked,
        AuditAction::ContactOptedOut,
        AuditAction::ContactOptedIn,
        AuditAction::ContactEdited,
        AuditAction::ContactDeleted,
        AuditAction::LabelCreated,
        AuditAction::LabelDeleted,
        AuditAction::AttributeCreated,
        AuditAction::AttributeChanged,
        AuditAction::AttributeDeleted,
        AuditAction::ContactsMerged,
        AuditAction::StopKeywordsChanged,
        AuditAction::BroadcastCreated,
        AuditAction::BroadcastPaused,
        AuditAction::BroadcastResumed,
        AuditAction::BroadcastCancelled,
        AuditAction::SendingRulesChanged,
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyRevoked,
        AuditAction::WebhookCreated,
        AuditAction::WebhookDeleted,
        AuditAction::AiSettingsChanged,
        AuditAction::AiProfileChanged,
        AuditAction::AiEnabled,
        AuditAction::AiDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::WorkspaceCreated => "workspace_created",
            AuditAction::MemberAdded => "member_added",
            AuditAction::MemberInvited => "member_invited",
            AuditAction::InviteAccepted => "invite_accepted",
            AuditAction::RoleChanged => "role_changed",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::AccountLocked => "account_locked",
            AuditAction::ChannelCreated => "channel_created",
            AuditAction::CannedResponseCreated => "canned_response_created",
            AuditAction::CannedResponseDeleted => "canned_response_deleted",
            AuditAction::ReadReceiptsChanged => "read_receipts_changed",
            AuditAction::ChannelRelinked => "channel_relinked",
            AuditAction::ContactOptedOut => "contact_opted_out",
            AuditAction::ContactOptedIn => "contact_opted_in",
            AuditAction::ContactEdited => "contact_edited",
            AuditAction::ContactDeleted => "contact_deleted",
            AuditAction::LabelCreated => "label_created",
            AuditAction::LabelDeleted => "label_deleted",
            AuditAction::AttributeCreated => "attribute_created",
            AuditAction::AttributeChanged => "attribute_changed",
            AuditAction::AttributeDeleted => "attribute_deleted",
            AuditAction::ContactsMerged => "contacts_merged",
            AuditAction::StopKeywordsChanged => "stop_keywords_changed",
            AuditAction::BroadcastCreated => "broadcast_created",
            AuditAction::BroadcastPaused => "broadcast_paused",
            AuditAction::BroadcastResumed => "broadcast_resumed",
            AuditAction::BroadcastCancelled => "broadcast_cancelled",
            AuditAction::SendingRulesChanged => "sending_rules_changed",
            AuditAction::ApiKeyCreated => "api_key_created",
            AuditAction::ApiKeyRevoked => "api_key_revoked",
            AuditAction::WebhookCreated => "webhook_created",
            AuditAction::WebhookDeleted => "webhook_deleted",
            AuditAction::AiSettingsChanged => "ai_settings_changed",
            AuditAction::AiProfileChanged => "ai_profile_changed",
            AuditAction::AiEnabled => "ai_enabled",
            AuditAction::AiDisabled => "ai_disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: Option<String>,
    pub action: AuditAction,
    /// What the action was about, in words (a member's email, a workspace name).
    pub subject: String,
    /// Extra facts, such as `agent → admin`.
    pub detail: String,
}
