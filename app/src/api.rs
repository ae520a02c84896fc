//! Server functions: the dashboard's calls to the server. Each one is a thin layer over
//! `balas_backend::accounts`, which checks the caller's session and role on the server.

use std::collections::BTreeMap;

use balas_domain::{
    AddedMember, Agent, AiChannel, AiProfile, AiProfileVersion, AiSettings, AiTrial, AiUsage, ApiKey, AppError,
    Attachment, Attribute, AudiencePreview, AuditEntry, Broadcast, BroadcastDraft, BroadcastRecipient, CannedResponse,
    Channel, Contact, ContactFilter, ContactNote, ContactPage, ContactView, ConversationSummary, ConversationView,
    CreatedApiKey, CreatedWebhook, InboxFilter, InboxPage, InviteInfo, Label, Me, Message, MessagePage, Onboarding,
    RecipientState, SandboxChannel, Segment, SendSeries, SendingRules, SystemStatus, TeamMember, Webhook,
    WebhookDelivery,
};
#[cfg(feature = "ssr")]
use balas_domain::{AttributeId, ContactId, ConversationId, Field, FieldError, Issue, LabelId, LinkMethod, MessageId};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod ssr {
    use balas_backend::AppState;
    use balas_backend::accounts::{self, Caller, Login, RequestMeta};
    use balas_domain::{AppError, Language};
    use http::header::{COOKIE, SET_COOKIE, USER_AGENT};
    use http::{HeaderMap, HeaderValue, StatusCode};
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    pub const SESSION_COOKIE: &str = "balas_session";
    /// The cookie leptos_i18n reads to pick the language when it renders a page.
    pub const LANGUAGE_COOKIE: &str = "i18n_pref_locale";

    pub fn state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| balas_backend::internal("AppState missing from the context"))
    }

    async fn headers() -> Result<HeaderMap, AppError> {
        leptos_axum::extract::<HeaderMap>().await.map_err(balas_backend::internal)
    }

    pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }

    pub async fn meta() -> Result<RequestMeta, AppError> {
        let state = state()?;
        let headers = headers().await?;
        let forwarded = state
            .settings
            .trust_forwarded_for
            .then(|| headers.get("x-forwarded-for")?.to_str().ok()?.rsplit(',').next().map(|s| s.trim().to_owned()))
            .flatten();
        let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .await
            .ok()
            .map(|info| info.0.ip().to_string());
        Ok(RequestMeta {
            ip: forwarded.or(peer).unwrap_or_else(|| "unknown".to_owned()),
            user_agent: headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
        })
    }

    pub async fn session_token() -> Result<Option<String>, AppError> {
        Ok(cookie(&headers().await?, SESSION_COOKIE))
    }

    /// The logged-in caller, or `Unauthenticated`.
    pub async fn caller() -> Result<Caller, AppError> {
        let state = state()?;
        accounts::require_caller(&state, session_token().await?.as_deref()).await
    }

    /// Sends errors with their HTTP status (401, 403, 422, …) instead of a generic 500.
    pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
        if let (Err(error), Some(response)) = (&result, use_context::<ResponseOptions>()) {
            response.set_status(StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        }
        result
    }

    fn set_cookie(value: String) {
        if let (Some(response), Ok(value)) = (use_context::<ResponseOptions>(), HeaderValue::from_str(&value)) {
            response.append_header(SET_COOKIE, value);
        }
    }

    fn secure(state: &AppState) -> &'static str {
        if state.settings.secure_cookies() { "; Secure" } else { "" }
    }

    /// Puts the new session in an HttpOnly cookie and the user's language in the language cookie.
    pub fn start(state: &AppState, login: &Login) {
        let max_age = u64::from(state.settings.session_hours) * 3600;
        set_cookie(format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            login.token,
            secure(state)
        ));
        set_language_cookie(state, login.me.language);
    }

    pub fn set_language_cookie(state: &AppState, language: Language) {
        set_cookie(format!(
            "{LANGUAGE_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000{}",
            language.code(),
            secure(state)
        ));
    }

    pub fn clear_session(state: &AppState) {
        set_cookie(format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}", secure(state)));
    }
}

#[cfg(feature = "ssr")]
pub use ssr::{SESSION_COOKIE, cookie};

/// Whether the first-run setup still has to be done.
#[server(prefix = "/api", endpoint = "needs_setup")]
pub async fn needs_setup() -> Result<bool, AppError> {
    ssr::respond(async { balas_backend::accounts::needs_setup(&ssr::state()?).await }.await)
}

/// First-run setup: the workspace and its first admin, who is then logged in.
#[server(prefix = "/api", endpoint = "setup")]
pub async fn set_up(workspace_name: String, name: String, email: String, password: String) -> Result<(), AppError> {
    use balas_backend::accounts::{self, SetupForm};
    ssr::respond(
        async {
            let state = ssr::state()?;
            let login =
                accounts::set_up(&state, &ssr::meta().await?, SetupForm { workspace_name, name, email, password })
                    .await?;
            ssr::start(&state, &login);
            Ok(())
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "login")]
pub async fn log_in(email: String, password: String) -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let login = balas_backend::accounts::log_in(&state, &ssr::meta().await?, &email, &password).await?;
            ssr::start(&state, &login);
            Ok(())
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "logout")]
pub async fn log_out() -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            if let Some(caller) =
                balas_backend::accounts::caller(&state, ssr::session_token().await?.as_deref()).await?
            {
                balas_backend::accounts::log_out(&state, &caller).await?;
            }
            ssr::clear_session(&state);
            Ok(())
        }
        .await,
    )
}

/// Ends every session of the caller, on every device.
#[server(prefix = "/api", endpoint = "logout_everywhere")]
pub async fn log_out_everywhere() -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            balas_backend::accounts::log_out_everywhere(&state, &ssr::caller().await?).await?;
            ssr::clear_session(&state);
            Ok(())
        }
        .await,
    )
}

/// The logged-in user, or `None` without a live session.
#[server(prefix = "/api", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = balas_backend::accounts::caller(&state, ssr::session_token().await?.as_deref()).await?;
            Ok(caller.map(|c| c.me))
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "change_password")]
pub async fn change_password(current_password: String, new_password: String) -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            balas_backend::accounts::change_password(
                &state,
                &caller,
                &ssr::meta().await?,
                &current_password,
                &new_password,
            )
            .await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "set_language")]
pub async fn set_language(language: String) -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            let language = balas_backend::accounts::set_language(&state, &caller, &language).await?;
            ssr::set_language_cookie(&state, language);
            Ok(())
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "members")]
pub async fn list_members() -> Result<Vec<TeamMember>, AppError> {
    ssr::respond(async { balas_backend::accounts::members(&ssr::state()?, &ssr::caller().await?).await }.await)
}

#[server(prefix = "/api", endpoint = "add_member")]
pub async fn add_member(
    name: String,
    email: String,
    role: String,
    onboarding: Onboarding,
    #[server(default)] initial_password: String,
) -> Result<AddedMember, AppError> {
    use balas_backend::accounts::{self, MemberForm};
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            let form = MemberForm { name, email, role, onboarding, initial_password };
            accounts::add_member(&state, &caller, &ssr::meta().await?, form).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "set_role")]
pub async fn set_role(user_id: i64, role: String) -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            balas_backend::accounts::set_role(
                &state,
                &caller,
                &ssr::meta().await?,
                balas_domain::UserId(user_id),
                &role,
            )
            .await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "audit_log")]
pub async fn audit_log() -> Result<Vec<AuditEntry>, AppError> {
    ssr::respond(async { balas_backend::accounts::audit_log(&ssr::state()?, &ssr::caller().await?).await }.await)
}

#[server(prefix = "/api", endpoint = "system_status")]
pub async fn get_system_status() -> Result<SystemStatus, AppError> {
    ssr::respond(async { balas_backend::accounts::system_status(&ssr::state()?, &ssr::caller().await?).await }.await)
}

#[server(prefix = "/api", endpoint = "invite")]
pub async fn get_invite(token: String) -> Result<InviteInfo, AppError> {
    ssr::respond(async { balas_backend::accounts::invite(&ssr::state()?, &token).await }.await)
}

#[server(prefix = "/api", endpoint = "accept_invite")]
pub async fn accept_invite(token: String, password: String) -> Result<(), AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let login = balas_backend::accounts::accept_invite(&state, &ssr::meta().await?, &token, &password).await?;
            ssr::start(&state, &login);
            Ok(())
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "channels")]
pub async fn list_channels() -> Result<Vec<Channel>, AppError> {
    ssr::respond(async { balas_backend::messaging::channels(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Adds a channel on the sandbox network (admins; only when the sandbox is enabled).
#[server(prefix = "/api", endpoint = "create_sandbox_channel")]
pub async fn create_sandbox_channel(name: String, phone: String, rate: Option<i64>) -> Result<Channel, AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            balas_backend::messaging::create_sandbox_channel(&state, &caller, &name, &phone, rate).await
        }
        .await,
    )
}

/// Parses a link method from a form (`qr` or `code`).
#[cfg(feature = "ssr")]
fn link_method(method: &str) -> Result<LinkMethod, AppError> {
    LinkMethod::parse(method).ok_or(AppError::invalid(FieldError::new(Field::Channel, Issue::NotAllowed)))
}

/// Adds a real WhatsApp number and starts linking it (admins).
#[server(prefix = "/api", endpoint = "link_whatsapp_number")]
pub async fn link_whatsapp_number(
    name: String,
    phone: String,
    rate: Option<i64>,
    method: String,
) -> Result<Channel, AppError> {
    ssr::respond(
        async {
            let method = link_method(&method)?;
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            balas_backend::messaging::link_whatsapp_number(&state, &caller, &name, &phone, rate, method).await
        }
        .await,
    )
}

/// Links a real number again, after a logout or an expired code (admins).
#[server(prefix = "/api", endpoint = "relink_channel")]
pub async fn relink_channel(channel_id: i64, method: String) -> Result<Channel, AppError> {
    ssr::respond(
        async {
            let method = link_method(&method)?;
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            balas_backend::messaging::relink_channel(&state, &caller, channel_id, method).await
        }
        .await,
    )
}

/// Sends a text to a phone number on a channel of the caller's workspace.
#[server(prefix = "/api", endpoint = "send_message")]
pub async fn send_message(channel_id: i64, to: String, text: String) -> Result<Message, AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            let caller = ssr::caller().await?;
            balas_backend::messaging::send_message(&state, &caller, channel_id, &to, &text).await
        }
        .await,
    )
}

/// Whether this installation runs the sandbox network (so the UI offers sandbox channels).
#[server(prefix = "/api", endpoint = "sandbox_enabled")]
pub async fn sandbox_enabled() -> Result<bool, AppError> {
    ssr::respond(
        async {
            ssr::caller().await?;
            Ok(ssr::state()?.settings.sandbox)
        }
        .await,
    )
}

/// A page of the caller's conversations that match the filter, newest activity first; `after` is
/// the last one of the previous page, as (last message time, id).
#[server(prefix = "/api", endpoint = "inbox")]
pub async fn load_inbox(filter: InboxFilter, after: Option<(i64, i64)>) -> Result<InboxPage, AppError> {
    ssr::respond(
        async { balas_backend::inbox::inbox(&ssr::state()?, &ssr::caller().await?, &filter, after).await }.await,
    )
}

/// Opens a conversation (and marks it read).
#[server(prefix = "/api", endpoint = "conversation")]
pub async fn open_conversation(id: i64) -> Result<ConversationView, AppError> {
    ssr::respond(
        async { balas_backend::inbox::open(&ssr::state()?, &ssr::caller().await?, ConversationId(id)).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "older_messages")]
pub async fn older_messages(conversation: i64, before: i64) -> Result<MessagePage, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::inbox::older_messages(&state, &caller, ConversationId(conversation), MessageId(before)).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "mark_read")]
pub async fn mark_read(conversation: i64) -> Result<(), AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::inbox::mark_read(&state, &caller, ConversationId(conversation)).await
        }
        .await,
    )
}

/// Sends the agent's reply (a text, or a file uploaded to `/api/media` with a caption), or adds a
/// private note (text only) with `note`.
#[server(prefix = "/api", endpoint = "reply")]
pub async fn reply(
    conversation: i64,
    text: String,
    note: bool,
    attachment: Option<Attachment>,
) -> Result<Message, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            let id = ConversationId(conversation);
            match (note, attachment) {
                (true, Some(_)) => Err(AppError::invalid(FieldError::new(Field::File, Issue::NotAllowed))),
                (true, None) => balas_backend::inbox::add_note(&state, &caller, id, &text).await,
                (false, file) => balas_backend::inbox::reply(&state, &caller, id, &text, file.as_ref()).await,
            }
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "assign")]
pub async fn assign(conversation: i64, assignee: Option<i64>) -> Result<ConversationSummary, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::inbox::assign(&state, &caller, ConversationId(conversation), assignee).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "set_status")]
pub async fn set_status(conversation: i64, status: String) -> Result<ConversationSummary, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::inbox::set_status(&state, &caller, ConversationId(conversation), &status).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "retry")]
pub async fn retry_message(message: i64) -> Result<Message, AppError> {
    ssr::respond(
        async { balas_backend::inbox::retry(&ssr::state()?, &ssr::caller().await?, MessageId(message)).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "agents")]
pub async fn list_agents() -> Result<Vec<Agent>, AppError> {
    ssr::respond(async { balas_backend::inbox::agents(&ssr::state()?, &ssr::caller().await?).await }.await)
}

#[server(prefix = "/api", endpoint = "canned")]
pub async fn list_canned() -> Result<Vec<CannedResponse>, AppError> {
    ssr::respond(async { balas_backend::inbox::canned_responses(&ssr::state()?, &ssr::caller().await?).await }.await)
}

#[server(prefix = "/api", endpoint = "add_canned")]
pub async fn add_canned(shortcut: String, body: String) -> Result<CannedResponse, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::inbox::create_canned_response(&state, &caller, &shortcut, &body).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "delete_canned")]
pub async fn delete_canned(id: i64) -> Result<(), AppError> {
    ssr::respond(
        async { balas_backend::inbox::delete_canned_response(&ssr::state()?, &ssr::caller().await?, id).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "set_read_receipts")]
pub async fn set_read_receipts(channel: i64, on: bool) -> Result<(), AppError> {
    ssr::respond(
        async { balas_backend::inbox::set_read_receipts(&ssr::state()?, &ssr::caller().await?, channel, on).await }
            .await,
    )
}

/// The sandbox channels a simulated customer can write to (no login: the customer-phone page is a
/// tool for trying Balas and for tests, and exists only when the sandbox is enabled).
#[server(prefix = "/api", endpoint = "phone_channels")]
pub async fn phone_channels() -> Result<Vec<SandboxChannel>, AppError> {
    ssr::respond(async { balas_backend::sandbox::channels(&ssr::state()?).await }.await)
}

#[server(prefix = "/api", endpoint = "phone_send")]
pub async fn phone_send(
    from: String,
    to: String,
    text: String,
    attachment: Option<Attachment>,
) -> Result<String, AppError> {
    ssr::respond(
        async {
            let state = ssr::state()?;
            balas_backend::sandbox::customer_send(&state, &from, &to, &text, attachment.as_ref()).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "phone_typing")]
pub async fn phone_typing(from: String, to: String, typing: bool) -> Result<(), AppError> {
    ssr::respond(async { balas_backend::sandbox::customer_typing(&ssr::state()?, &from, &to, typing).await }.await)
}

#[server(prefix = "/api", endpoint = "phone_read")]
pub async fn phone_read(reader: String, sender: String, wa_ids: Vec<String>) -> Result<(), AppError> {
    ssr::respond(async { balas_backend::sandbox::customer_read(&ssr::state()?, &reader, &sender, &wa_ids).await }.await)
}

/// Unread customer messages over the caller's whole workspace.
#[server(prefix = "/api", endpoint = "unread_total")]
pub async fn unread_total() -> Result<i64, AppError> {
    ssr::respond(async { balas_backend::inbox::unread_total(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// A page of the workspace's contacts that match `filter`.
#[server(prefix = "/api", endpoint = "contacts")]
pub async fn list_contacts(
    #[server(default)] filter: ContactFilter,
    #[server(default)] page: u32,
) -> Result<ContactPage, AppError> {
    ssr::respond(
        async { balas_backend::crm::contacts(&ssr::state()?, &ssr::caller().await?, &filter, page).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "contact")]
pub async fn open_contact(id: i64) -> Result<ContactView, AppError> {
    ssr::respond(
        async { balas_backend::crm::contact_view(&ssr::state()?, &ssr::caller().await?, ContactId(id)).await }.await,
    )
}

/// Changes a contact's details; `attributes` maps attribute keys to values as typed (empty
/// clears one; attributes left out are kept).
#[server(prefix = "/api", endpoint = "edit_contact")]
pub async fn edit_contact(
    id: i64,
    name: String,
    phone: String,
    email: String,
    #[server(default)] attributes: BTreeMap<String, String>,
) -> Result<Contact, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::crm::edit_contact(&state, &caller, ContactId(id), &name, &phone, &email, &attributes).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "create_contact")]
pub async fn create_contact(
    name: String,
    phone: String,
    email: String,
    #[server(default)] attributes: BTreeMap<String, String>,
) -> Result<Contact, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::crm::create_contact(&state, &caller, &name, &phone, &email, &attributes).await
        }
        .await,
    )
}

/// Merges contact `other` into contact `keep`, which keeps its number.
#[server(prefix = "/api", endpoint = "merge_contacts")]
pub async fn merge_contacts(keep: i64, other: i64) -> Result<Contact, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::crm::merge_contacts(&state, &caller, ContactId(keep), ContactId(other)).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "add_contact_note")]
pub async fn add_contact_note(id: i64, body: String) -> Result<Vec<ContactNote>, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::crm::add_contact_note(&state, &caller, ContactId(id), &body).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "delete_contact")]
pub async fn delete_contact(id: i64) -> Result<(), AppError> {
    ssr::respond(
        async { balas_backend::crm::delete_contact(&ssr::state()?, &ssr::caller().await?, ContactId(id)).await }.await,
    )
}

/// Stops (or restarts) broadcasts for a contact.
#[server(prefix = "/api", endpoint = "set_opted_out")]
pub async fn set_opted_out(id: i64, opted_out: bool) -> Result<Contact, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::crm::set_opted_out(&state, &caller, ContactId(id), opted_out).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "labels")]
pub async fn list_labels() -> Result<Vec<Label>, AppError> {
    ssr::respond(async { balas_backend::crm::labels(&ssr::state()?, &ssr::caller().await?).await }.await)
}

#[server(prefix = "/api", endpoint = "create_label")]
pub async fn create_label(name: String, color: String) -> Result<Vec<Label>, AppError> {
    ssr::respond(
        async { balas_backend::crm::create_label(&ssr::state()?, &ssr::caller().await?, &name, &color).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "delete_label")]
pub async fn delete_label(id: i64) -> Result<Vec<Label>, AppError> {
    ssr::respond(
        async { balas_backend::crm::delete_label(&ssr::state()?, &ssr::caller().await?, LabelId(id)).await }.await,
    )
}

/// Puts a label on (or, with `on` false, takes it off) the chosen contacts; returns how many
/// changed.
#[server(prefix = "/api", endpoint = "label_contacts")]
pub async fn label_contacts(label: i64, contacts: Vec<i64>, on: bool) -> Result<u64, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::crm::label_contacts(&state, &caller, LabelId(label), &contacts, on).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "segments")]
pub async fn list_segments() -> Result<Vec<Segment>, AppError> {
    ssr::respond(async { balas_backend::crm::segments(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Saves the contact list's filter under a name.
#[server(prefix = "/api", endpoint = "create_segment")]
pub async fn create_segment(name: String, #[server(default)] filter: ContactFilter) -> Result<Vec<Segment>, AppError> {
    ssr::respond(
        async { balas_backend::crm::create_segment(&ssr::state()?, &ssr::caller().await?, &name, &filter).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "delete_segment")]
pub async fn delete_segment(id: i64) -> Result<Vec<Segment>, AppError> {
    ssr::respond(async { balas_backend::crm::delete_segment(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

#[server(prefix = "/api", endpoint = "attributes")]
pub async fn list_attributes() -> Result<Vec<Attribute>, AppError> {
    ssr::respond(async { balas_backend::attributes::attributes(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Defines a custom attribute (`key` empty: made from the name; `options`: a list's choices,
/// one per line).
#[server(prefix = "/api", endpoint = "create_attribute")]
pub async fn create_attribute(
    name: String,
    #[server(default)] key: String,
    kind: String,
    #[server(default)] options: String,
) -> Result<Vec<Attribute>, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::attributes::create_attribute(&state, &caller, &name, &key, &kind, &options).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "update_attribute")]
pub async fn update_attribute(
    id: i64,
    name: String,
    #[server(default)] options: String,
) -> Result<Vec<Attribute>, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::attributes::update_attribute(&state, &caller, AttributeId(id), &name, &options).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "delete_attribute")]
pub async fn delete_attribute(id: i64) -> Result<Vec<Attribute>, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::attributes::delete_attribute(&state, &caller, AttributeId(id)).await
        }
        .await,
    )
}

/// Puts a label on a conversation (or, with `on` false, takes it off).
#[server(prefix = "/api", endpoint = "label_conversation")]
pub async fn label_conversation(conversation: i64, label: i64, on: bool) -> Result<ConversationSummary, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            let id = ConversationId(conversation);
            balas_backend::inbox::label_conversation(&state, &caller, id, LabelId(label), on).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "stop_keywords")]
pub async fn stop_keywords() -> Result<Vec<String>, AppError> {
    ssr::respond(async { balas_backend::crm::stop_keywords_of(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Sets the words that stop broadcasts (one per line).
#[server(prefix = "/api", endpoint = "set_stop_keywords")]
pub async fn set_stop_keywords(keywords: String) -> Result<Vec<String>, AppError> {
    ssr::respond(
        async { balas_backend::crm::set_stop_keywords(&ssr::state()?, &ssr::caller().await?, &keywords).await }.await,
    )
}

/// The workspace's latest broadcasts.
#[server(prefix = "/api", endpoint = "broadcasts")]
pub async fn list_broadcasts() -> Result<Vec<Broadcast>, AppError> {
    ssr::respond(async { balas_backend::broadcasts::list(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// A broadcast with its sends over time.
#[server(prefix = "/api", endpoint = "broadcast")]
pub async fn broadcast_detail(id: i64) -> Result<(Broadcast, SendSeries), AppError> {
    ssr::respond(async { balas_backend::broadcasts::detail(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

/// A page of a broadcast's recipients, optionally in one state.
#[server(prefix = "/api", endpoint = "broadcast_recipients")]
pub async fn broadcast_recipients(
    id: i64,
    #[server(default)] state: Option<RecipientState>,
    #[server(default)] page: u32,
) -> Result<Vec<BroadcastRecipient>, AppError> {
    ssr::respond(
        async { balas_backend::broadcasts::recipients(&ssr::state()?, &ssr::caller().await?, id, state, page).await }
            .await,
    )
}

/// What a draft comes to (counts, and the message for a few real recipients).
#[server(prefix = "/api", endpoint = "preview_broadcast", input = server_fn::codec::Json)]
pub async fn preview_broadcast(draft: BroadcastDraft) -> Result<AudiencePreview, AppError> {
    ssr::respond(
        async { balas_backend::broadcasts::preview(&ssr::state()?, &ssr::caller().await?, &draft).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "create_broadcast", input = server_fn::codec::Json)]
pub async fn create_broadcast(draft: BroadcastDraft) -> Result<Broadcast, AppError> {
    ssr::respond(async { balas_backend::broadcasts::create(&ssr::state()?, &ssr::caller().await?, &draft).await }.await)
}

#[server(prefix = "/api", endpoint = "pause_broadcast")]
pub async fn pause_broadcast(id: i64) -> Result<Broadcast, AppError> {
    ssr::respond(async { balas_backend::broadcasts::pause(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

#[server(prefix = "/api", endpoint = "resume_broadcast")]
pub async fn resume_broadcast(id: i64) -> Result<Broadcast, AppError> {
    ssr::respond(async { balas_backend::broadcasts::resume(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

#[server(prefix = "/api", endpoint = "cancel_broadcast")]
pub async fn cancel_broadcast(id: i64) -> Result<Broadcast, AppError> {
    ssr::respond(async { balas_backend::broadcasts::cancel(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

/// Sends a broadcast's failed recipients again; returns how many.
#[server(prefix = "/api", endpoint = "retry_broadcast")]
pub async fn retry_broadcast(id: i64) -> Result<u64, AppError> {
    ssr::respond(
        async { balas_backend::broadcasts::retry_failed(&ssr::state()?, &ssr::caller().await?, id).await }.await,
    )
}

#[server(prefix = "/api", endpoint = "sending_rules")]
pub async fn get_sending_rules() -> Result<SendingRules, AppError> {
    ssr::respond(async { balas_backend::broadcasts::sending_rules(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Sets when and how much the workspace's numbers may send broadcasts.
#[server(prefix = "/api", endpoint = "set_sending_rules")]
pub async fn set_sending_rules(
    time_zone: String,
    from_hour: u8,
    to_hour: u8,
    daily_cap: u32,
) -> Result<SendingRules, AppError> {
    ssr::respond(
        async {
            let rules = SendingRules { time_zone, from_hour, to_hour, daily_cap };
            balas_backend::broadcasts::set_sending_rules(&ssr::state()?, &ssr::caller().await?, rules).await
        }
        .await,
    )
}

/// The workspace's API keys (admins).
#[server(prefix = "/api", endpoint = "api_keys")]
pub async fn list_api_keys() -> Result<Vec<ApiKey>, AppError> {
    ssr::respond(async { balas_backend::api::api_keys(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Makes an API key (admins); the answer holds its secret, shown this once.
#[server(prefix = "/api", endpoint = "create_api_key")]
pub async fn create_api_key(
    name: String,
    #[server(default)] scopes: Vec<String>,
    #[server(default)] rate_per_minute: Option<u32>,
) -> Result<CreatedApiKey, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::api::create_api_key(&state, &caller, &name, &scopes, rate_per_minute).await
        }
        .await,
    )
}

#[server(prefix = "/api", endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: i64) -> Result<ApiKey, AppError> {
    ssr::respond(async { balas_backend::api::revoke_api_key(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

#[server(prefix = "/api", endpoint = "webhooks")]
pub async fn list_webhooks() -> Result<Vec<Webhook>, AppError> {
    ssr::respond(async { balas_backend::webhooks::webhooks(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Registers a webhook (admins); the answer holds its signing secret, shown this once.
#[server(prefix = "/api", endpoint = "create_webhook")]
pub async fn create_webhook(url: String, #[server(default)] events: Vec<String>) -> Result<CreatedWebhook, AppError> {
    ssr::respond(
        async { balas_backend::webhooks::create_webhook(&ssr::state()?, &ssr::caller().await?, &url, &events).await }
            .await,
    )
}

#[server(prefix = "/api", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: i64) -> Result<(), AppError> {
    ssr::respond(
        async { balas_backend::webhooks::delete_webhook(&ssr::state()?, &ssr::caller().await?, id).await }.await,
    )
}

/// A webhook's latest deliveries, with each one's last answer.
#[server(prefix = "/api", endpoint = "webhook_deliveries")]
pub async fn webhook_deliveries(id: i64) -> Result<Vec<WebhookDelivery>, AppError> {
    ssr::respond(async { balas_backend::webhooks::deliveries(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

#[server(prefix = "/api", endpoint = "replay_delivery")]
pub async fn replay_delivery(id: i64) -> Result<(), AppError> {
    ssr::respond(async { balas_backend::webhooks::replay(&ssr::state()?, &ssr::caller().await?, id).await }.await)
}

// ---- AI agent ------------------------------------------------------------------------------------

/// The workspace's AI provider (without its key) and this month's token use (admins).
#[server(prefix = "/api", endpoint = "ai_settings")]
pub async fn get_ai_settings() -> Result<(Option<AiSettings>, AiUsage), AppError> {
    ssr::respond(async { balas_backend::ai::settings(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Saves the AI provider (admins); an empty key keeps the saved one.
#[server(prefix = "/api", endpoint = "set_ai_settings")]
pub async fn set_ai_settings(
    base_url: String,
    #[server(default)] api_key: String,
    model: String,
    #[server(default)] monthly_token_cap: i64,
) -> Result<AiSettings, AppError> {
    ssr::respond(
        async {
            balas_backend::ai::set_settings(
                &ssr::state()?,
                &ssr::caller().await?,
                &base_url,
                &api_key,
                &model,
                monthly_token_cap,
            )
            .await
        }
        .await,
    )
}

/// Every channel with its AI profile.
#[server(prefix = "/api", endpoint = "ai_channels")]
pub async fn ai_channels() -> Result<Vec<AiChannel>, AppError> {
    ssr::respond(async { balas_backend::ai::channels(&ssr::state()?, &ssr::caller().await?).await }.await)
}

/// Saves a channel's AI profile as a new version (admins).
#[server(prefix = "/api", endpoint = "save_ai_profile", input = server_fn::codec::Json)]
pub async fn save_ai_profile(channel: i64, profile: AiProfile) -> Result<AiChannel, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::ai::save_profile(&state, &caller, balas_domain::ChannelId(channel), profile).await
        }
        .await,
    )
}

/// Turns a channel's AI on or off (admins).
#[server(prefix = "/api", endpoint = "set_ai_enabled")]
pub async fn set_ai_enabled(channel: i64, on: bool) -> Result<AiChannel, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::ai::set_enabled(&state, &caller, balas_domain::ChannelId(channel), on).await
        }
        .await,
    )
}

/// A channel's saved profile versions, newest first (admins).
#[server(prefix = "/api", endpoint = "ai_profile_versions")]
pub async fn ai_profile_versions(channel: i64) -> Result<Vec<AiProfileVersion>, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::ai::versions(&state, &caller, balas_domain::ChannelId(channel)).await
        }
        .await,
    )
}

/// Makes an earlier profile version current again (admins).
#[server(prefix = "/api", endpoint = "revert_ai_profile")]
pub async fn revert_ai_profile(channel: i64, version: i64) -> Result<AiChannel, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::ai::revert(&state, &caller, balas_domain::ChannelId(channel), version).await
        }
        .await,
    )
}

/// Tries an unsaved profile on a customer's message; nothing is sent (admins).
#[server(prefix = "/api", endpoint = "try_ai_profile", input = server_fn::codec::Json)]
pub async fn try_ai_profile(profile: AiProfile, text: String) -> Result<AiTrial, AppError> {
    ssr::respond(
        async { balas_backend::ai::try_profile(&ssr::state()?, &ssr::caller().await?, profile, &text).await }.await,
    )
}

/// Pauses the AI in a conversation, or hands the conversation back to it.
#[server(prefix = "/api", endpoint = "set_conversation_ai")]
pub async fn set_conversation_ai(conversation: i64, paused: bool) -> Result<ConversationSummary, AppError> {
    ssr::respond(
        async {
            let (state, caller) = (ssr::state()?, ssr::caller().await?);
            balas_backend::ai::set_paused(&state, &caller, ConversationId(conversation), paused).await
        }
        .await,
    )
}
